"""Monitoring: drift of current data against the training reference, the graded decision, retraining.

Current data arrives as CSV/Parquet files and as inference logs written by the serving
engineer's ``LogWriter``; the end-to-end run through a served bento lives with the lead's tests.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from gitops_ml import monitor, release, tracking
from gitops_ml.cli import main, report
from gitops_ml.config import Drift, load_spec
from gitops_ml.errors import ConfigError
from gitops_ml.example import drifted_batch
from gitops_ml.monitor.calibrate import false_alarms
from gitops_ml.monitor.measure import measure, quick_scores
from gitops_ml.monitor.sources import bottom_k, parse_duration
from gitops_ml.serve.inference_log import LogWriter

from .conftest import EXAMPLE_DATA, copy_project

BATCH = 800  # above drift.min_rows (500), small enough to keep each run to seconds
FEATURES = ["age", "tenure_months", "monthly_charges", "total_charges", "support_calls", "contract",
            "internet_service", "payment_method", "paperless_billing", "region"]


@pytest.fixture(scope="module")
def released(trained_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained project with its version 1 released to staging by the release engineer's promote."""
    root = copy_project(trained_project, tmp_path_factory.mktemp("monitor") / "project")
    release.promote(load_spec(root), 1, "staging")
    return root


def batch_file(folder: Path, severity: str, suffix: str = "csv", labels: bool = True, n: int = BATCH,
               seed: int = 11) -> Path:
    frame = drifted_batch(n, severity, seed)
    if not labels:
        frame = frame.drop(columns=["churned"])
    path = folder / f"{severity}-{n}-{seed}.{suffix}"
    frame.to_csv(path, index=False) if suffix == "csv" else frame.to_parquet(path, index=False)
    return path


def outputs_of(folder: Path) -> dict[str, str]:
    path = folder / "github_output"
    text = path.read_text() if path.exists() else ""
    found = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):  # name<<delimiter / value / delimiter
        if "<<" in line:
            found[line.split("<<")[0]] = lines[i + 1]
    return found


# -- the graded decision on files -----------------------------------------------------------------
def test_undrifted_batch_is_none(released: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "github_output"))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "step_summary.md"))
    spec = load_spec(released)
    result = monitor.drift(spec, "staging", str(batch_file(tmp_path, "none")), output_dir=tmp_path / "out")
    assert result.decision == "none", result.reasons
    assert result.model_version == 1 and result.found_by == "manifest"
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["decision"] == "none" and summary["current"]["rows_used"] == BATCH
    assert {f["column"] for f in summary["features"]} == set(FEATURES)  # not the target, not the date
    assert summary["reference"]["rows"] == 6400 and summary["reference"]["data_fingerprint"]
    assert summary["quality"]["metric"] == "roc_auc" and summary["quality"]["loss"] < 0.05
    assert (tmp_path / "out" / "report.html").stat().st_size > 100_000  # Evidently's self-contained page
    assert not (tmp_path / "out" / "title.txt").exists()
    assert not (tmp_path / "github_output").exists()  # the stage returns its result; the CLI's reporter reports it
    report.drift_check(result, spec, print)
    assert outputs_of(tmp_path)["decision"] == "none"
    assert "**none**" in (tmp_path / "step_summary.md").read_text()


def test_moderate_batch_calls_for_retrain(released: Path, tmp_path: Path) -> None:
    spec = load_spec(released)
    current = batch_file(tmp_path, "moderate", suffix="parquet", labels=False)
    result = monitor.drift(spec, "staging", str(current), output_dir=tmp_path)
    assert result.decision == "retrain", result.reasons
    assert 0.3 <= result.drift_share < 0.75
    assert {"tenure_months", "monthly_charges", "support_calls"} <= {f.column for f in result.drifted}
    assert result.quality is None and result.prediction.drifted
    title = (tmp_path / "title.txt").read_text().strip()
    assert title == f"Retrain churn-classifier: drift in {len(result.drifted)} features"
    body = (tmp_path / "body.md").read_text()
    assert "moderate" in body and "| monthly_charges | numerical |" in body
    assert json.loads((tmp_path / "summary.json").read_text())["outputs"]["kind"] == "pull_request"


def test_severe_batch_escalates_with_an_issue_body(released: Path, tmp_path: Path) -> None:
    spec = load_spec(released)
    result = monitor.drift(spec, "staging", str(batch_file(tmp_path, "severe")), output_dir=tmp_path)
    assert result.decision == "escalate", result.reasons
    assert result.quality.loss > 0.10
    # Most features move and the concept flips: both the drift share and the quality loss escalate.
    assert [r.signal for r in result.reasons if r.grade == "escalate"] == ["data_drift", "quality"]
    assert result.drift_share >= 0.75
    assert "severe drift, back to development" in (tmp_path / "title.txt").read_text()
    body = (tmp_path / "body.md").read_text()
    assert "- [ ] Decide whether the data contract" in body and "roc_auc" in body


def test_severe_traffic_without_labels_escalates_on_drift_alone(released: Path, tmp_path: Path) -> None:
    spec = load_spec(released)
    current = batch_file(tmp_path, "severe", suffix="parquet", labels=False)
    result = monitor.drift(spec, "staging", str(current), output_dir=tmp_path)
    assert result.decision == "escalate", result.reasons
    assert result.quality is None
    assert [r.signal for r in result.reasons if r.grade == "escalate"] == ["data_drift"]


# -- current data that cannot be compared -----------------------------------------------------------
def test_empty_current_data_is_insufficient_data(released: Path, tmp_path: Path) -> None:
    header_only, zero_bytes = tmp_path / "header.csv", tmp_path / "zero.csv"
    drifted_batch(5, "none", 1).head(0).to_csv(header_only, index=False)
    zero_bytes.write_text("")
    for path in (header_only, zero_bytes):
        run = CliRunner().invoke(main, ["--project", str(released), "drift", "--env", "staging", "--current",
                                        str(path), "--output-dir", str(tmp_path / "out"), "--json"])
        assert run.exit_code == 0, run.output
        payload = json.loads(run.stdout)
        assert payload["decision"] == "insufficient_data"
        assert payload["current"]["rows_used"] == 0 and "at least 500" in payload["reasons"][0]["message"]
        assert not (tmp_path / "out" / "report.html").exists()


def test_too_few_rows_is_insufficient_data(released: Path, tmp_path: Path) -> None:
    result = monitor.drift(load_spec(released), "staging", str(batch_file(tmp_path, "severe", n=120)),
                           output_dir=tmp_path)
    assert result.decision == "insufficient_data" and result.current.rows_used == 120


def test_missing_current_file_is_a_usage_error(released: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.csv"
    run = CliRunner().invoke(main, ["--project", str(released), "drift", "--current", str(missing)])
    assert run.exit_code == 2, run.output
    assert f"{missing}: file not found" in run.output


def test_rows_breaking_the_contract_are_left_out_and_counted(released: Path, tmp_path: Path) -> None:
    spec = load_spec(released)
    frame = drifted_batch(BATCH, "none", 5)
    frame.loc[:9, "contract"] = "weekly"  # 10 of 800 rows: 1.25 %, under max_invalid_share
    path = tmp_path / "few-bad.csv"
    frame.to_csv(path, index=False)
    result = monitor.drift(spec, "staging", str(path), output_dir=tmp_path / "few")
    assert result.current.invalid_rows == 10 and result.current.rows_used == BATCH - 10
    assert result.decision == "none"
    assert any(r.signal == "contract" and "contract" in r.message for r in result.reasons)

    frame.loc[:99, "monthly_charges"] = -5.0  # 100 rows: 12.5 %
    frame.to_csv(path, index=False)
    result = monitor.drift(spec, "staging", str(path), output_dir=tmp_path / "many")
    assert result.decision == "escalate"
    contract = next(r for r in result.reasons if r.signal == "contract")
    assert contract.grade == "escalate" and "monthly_charges" in contract.message


def test_missing_feature_column_fails_the_check(released: Path, tmp_path: Path) -> None:
    path = tmp_path / "no-tenure.csv"
    drifted_batch(BATCH, "none", 2).drop(columns=["tenure_months"]).to_csv(path, index=False)
    run = CliRunner().invoke(main, ["--project", str(released), "drift", "--current", str(path)])
    assert run.exit_code == 1, run.output
    assert "missing column(s) tenure_months" in run.output


# -- the inference log ------------------------------------------------------------------------------
def write_log(spec, frame: pd.DataFrame, logged_as: int = 1, corrupt: bool = False) -> Path:
    """Serve-like rows through the serving engineer's writer, with version 1's answers."""
    import mlflow

    tracking.connect(spec)
    model = mlflow.sklearn.load_model(f"models:/{spec.model_name}/1")
    features = frame.drop(columns=["churned"])
    writer = LogWriter(spec.resolve(spec.serving.inference_log), model_name=spec.model_name,
                       model_version=logged_as, data_fingerprint="test")
    rows = features.astype(object).where(features.notna(), None).to_dict("records")
    writer.submit(rows, model.predict(features).tolist(), model.predict_proba(features)[:, 1].tolist())
    writer.close()
    if corrupt:
        with open(writer.files[-1], "a", encoding="utf-8") as handle:
            handle.write('{"timestamp": "2026-11-23T\n')  # a crash's partial last line
    return writer.files[-1]


def test_drift_reads_the_inference_log_of_the_env_model(released: Path, tmp_path: Path) -> None:
    root = copy_project(released, tmp_path / "project")
    spec = load_spec(root)
    write_log(spec, drifted_batch(BATCH, "moderate", 21), corrupt=True)
    write_log(spec, drifted_batch(300, "severe", 22), logged_as=7)  # another version's traffic is not counted
    run = CliRunner().invoke(main, ["--project", str(root), "drift", "--env", "staging", "--json"])
    assert run.exit_code == 0, run.output
    payload = json.loads(run.stdout)
    assert payload["decision"] == "retrain"
    assert payload["current"]["kind"] == "log" and payload["current"]["rows_used"] == BATCH
    assert payload["current"]["corrupt_lines"] == 1 and payload["window"] == "7d"
    assert payload["prediction"]["drifted"]
    assert Path(payload["outputs"]["summary_json"]) == root / ".gitops-ml" / "drift" / "summary.json"


def test_missing_or_stale_log_is_insufficient_data(released: Path, tmp_path: Path) -> None:
    root = copy_project(released, tmp_path / "project")
    spec = load_spec(root)
    assert monitor.drift(spec, "staging").decision == "insufficient_data"  # no log directory yet
    write_log(spec, drifted_batch(BATCH, "moderate", 23))
    time.sleep(1.1)  # nothing is a second old after a second has passed
    result = monitor.drift(spec, "staging", window="1s")
    assert result.decision == "insufficient_data" and result.current.window == "1s"


# -- false alarms and the measurement itself --------------------------------------------------------
def test_random_split_is_rarely_called_drift() -> None:
    """A random split cannot have drifted: at min_rows current rows, under 5 % of splits may say so."""
    frame = pd.read_csv(EXAMPLE_DATA)
    found = false_alarms(frame, FEATURES, Drift(), current_rows=Drift().min_rows, seeds=range(30))
    assert found.rate <= 0.05, found.as_dict()
    assert found.column_rate <= 0.06, found.as_dict()


def test_quick_scores_are_the_scores_of_the_report() -> None:
    frame = pd.read_csv(EXAMPLE_DATA)
    current = frame.sample(600, random_state=3)
    reference = frame.drop(index=current.index)
    report = measure(reference, current, FEATURES, Drift(), prediction_kind=None)
    quick = quick_scores(reference, current, FEATURES, Drift())
    assert [(c.column, c.method) for c in report.features] == [(c.column, c.method) for c in quick]
    assert np.allclose([c.score for c in report.features], [c.score for c in quick])


def test_sampling_is_seeded_uniform_and_bounded() -> None:
    chunks = lambda: (pd.DataFrame({"x": np.arange(start, start + 1000)}) for start in range(0, 50_000, 1000))  # noqa: E731
    first, seen = bottom_k(chunks(), 500, seed=4)
    again, _ = bottom_k(chunks(), 500, seed=4)
    assert seen == 50_000 and len(first) == 500 and first.equals(again)
    assert first["x"].is_monotonic_increasing  # original order kept
    assert 20_000 < first["x"].mean() < 30_000  # drawn from the whole file, not its start


def test_durations_and_graded_thresholds_are_checked() -> None:
    assert parse_duration("7d").days == 7 and parse_duration("12h").seconds == 12 * 3600
    with pytest.raises(ConfigError, match="window"):
        parse_duration("soon")
    with pytest.raises(ValueError, match="retrain_quality_loss"):
        Drift(retrain_quality_loss=0.2, escalate_quality_loss=0.1)


# -- retraining -------------------------------------------------------------------------------------
def test_retrain_without_labelled_data_escalates(released: Path, tmp_path: Path) -> None:
    root = copy_project(released, tmp_path / "project")
    current = batch_file(tmp_path, "moderate", labels=False)
    result = monitor.retrain(load_spec(root), "staging", current=str(current))
    assert result.outcome == "escalate" and result.new_version is None
    assert "no labelled recent data" in result.reasons[0]
    assert "back to development" in result.title_file.read_text()
    assert release.current_version(load_spec(root), "staging") == 1


def test_retrain_on_moderate_drift_opens_a_promotion(released: Path, tmp_path: Path) -> None:
    root = copy_project(released, tmp_path / "project")
    labelled = batch_file(root / "data", "moderate", n=1500, seed=31)
    with open(root / "pyproject.toml", "a", encoding="utf-8") as handle:
        handle.write(f'\n[tool.gitops-ml.drift]\nfeedback = "data/{labelled.name}"\n')
    spec = load_spec(root)
    current = batch_file(tmp_path, "moderate", labels=False, seed=32)
    result = monitor.retrain(spec, "staging", current=str(current))
    assert result.outcome == "promoted", result.reasons
    assert result.new_version == 2 and result.evaluation.passed and result.recent.passed
    assert result.recent_rows == 1050  # 70 % of the labelled rows; 30 % held back to compare
    assert release.current_version(spec, "staging") == 2
    promotion = result.promotion
    assert promotion.title == f"Retrain churn-classifier: drift in {len(result.drift.drifted)} features"
    assert "Retrained because of drift" in promotion.body and "labelled recent rows held back" in promotion.body
    assert "| monthly_charges | numerical |" in promotion.body
    assert tracking.get_version(spec, tracking.connect(spec), 2).tags["retrained_from"] == "staging v1"
    assert (root / "model_cards" / "churn-classifier-v2.md").is_file()


def test_retrain_without_promoting_hands_the_promotion_to_the_promote_workflow(
    released: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Drift workflow's path: retrain trains and gates only (outcome trained, nothing released), its
    outputs carry the version, the environment, the title and the body, and promote, given them as the
    Promote workflow passes them (PROMOTE_TITLE, PROMOTE_EXTRA_BODY), opens the retraining promotion."""
    root = copy_project(released, tmp_path / "project")
    labelled = batch_file(root / "data", "moderate", n=1500, seed=31)
    with open(root / "pyproject.toml", "a", encoding="utf-8") as handle:
        handle.write(f'\n[tool.gitops-ml.drift]\nfeedback = "data/{labelled.name}"\n')
    spec = load_spec(root)
    result = monitor.retrain(spec, "staging", current=str(batch_file(tmp_path, "moderate", labels=False, seed=32)),
                             promote=False)
    assert result.outcome == "trained" and result.new_version == 2, result.reasons
    assert result.promotion is None and release.current_version(spec, "staging") == 1  # nothing released
    outputs = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    report.retraining(result, spec, lambda line: None)
    written = _outputs(outputs.read_text())
    assert (written["outcome"], written["version"], written["environment"]) == ("trained", "2", "staging")
    assert written["title"] == f"Retrain churn-classifier: drift in {len(result.drift.drifted)} features"
    assert "Retrained because of drift" in written["body"] and "| monthly_charges | numerical |" in written["body"]

    monkeypatch.setenv("PROMOTE_TITLE", written["title"])
    monkeypatch.setenv("PROMOTE_EXTRA_BODY", written["body"])
    done = CliRunner().invoke(main, ["--project", str(root), "promote", "2", "--to", "staging", "--json"])
    assert done.exit_code == 0, done.output
    promoted = json.loads(done.stdout)
    assert release.current_version(spec, "staging") == 2
    body = Path(promoted["body_file"]).read_text()
    assert promoted["title"] == written["title"] and "Retrained because of drift" in body


def _outputs(text: str) -> dict[str, str]:
    """GITHUB_OUTPUT's name<<DELIMITER blocks, as the runner reads them."""
    values, lines = {}, iter(text.splitlines())
    for line in lines:
        name, _, delimiter = line.partition("<<")
        values[name] = "\n".join(iter(lambda: next(lines), delimiter))
    return values


def test_retrain_that_fails_the_gates_escalates(released: Path, tmp_path: Path) -> None:
    root = copy_project(released, tmp_path / "project")
    text = (root / "pyproject.toml").read_text().replace("roc_auc = 0.75", "roc_auc = 0.99")
    (root / "pyproject.toml").write_text(text)
    spec = load_spec(root)
    result = monitor.retrain(spec, "staging", current=str(batch_file(tmp_path, "moderate", seed=41)))
    assert result.outcome == "escalate" and result.new_version == 2
    assert any("roc_auc >= 0.99" in reason for reason in result.reasons)
    assert release.current_version(spec, "staging") == 1  # nothing released
    assert "did not help" in result.title_file.read_text()
    assert "gate failed" in result.body_file.read_text()


def test_retrain_command_skips_without_a_retrain_decision(released: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    root = copy_project(released, tmp_path / "project")  # no inference log yet: insufficient_data
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "github_output"))
    run = CliRunner().invoke(main, ["--project", str(root), "retrain", "--env", "staging", "--json"])
    assert run.exit_code == 0, run.output
    payload = json.loads(run.stdout)
    assert payload["outcome"] == "skipped" and payload["decision"] == "insufficient_data"
    assert outputs_of(tmp_path)["outcome"] == "skipped"
    assert json.loads((root / ".gitops-ml" / "drift" / "retrain.json").read_text())["outcome"] == "skipped"


@pytest.mark.parametrize(("share", "loss", "expected"), [
    (0.0, 0.02, "none"),  # minor deviation: no action
    (0.2, 0.049, "none"),
    (0.3, 0.0, "retrain"),  # three features in ten
    (0.1, 0.06, "retrain"),  # the seeds' moderate 5-8 % loss
    (0.1, 0.11, "escalate"),  # over 10 %: back to development
    (0.8, 0.0, "escalate"),  # most inputs moved at once
])
def test_the_decision_is_graded(share: float, loss: float, expected: str) -> None:
    from gitops_ml.monitor.decide import Quality, data_drift_reason, gravest, quality_reason
    from gitops_ml.monitor.measure import ColumnDrift, Measurement

    drifted = round(share * 10)
    columns = [ColumnDrift(f"x{i}", "numerical", "wasserstein", 0.1, 0.5 if i < drifted else 0.01, i < drifted)
                for i in range(10)]
    quality = Quality("roc_auc", training=0.8, current=0.8 * (1 - loss), rows=1000, source="feedback.csv")
    reasons = [data_drift_reason(Measurement(columns, None, None), Drift()), quality_reason(quality, Drift())]
    assert gravest(reasons) == expected, reasons
    lower = Quality("rmse", training=10.0, current=11.5, rows=1000, source="f")  # lower is better: 15 % worse
    assert lower.loss == pytest.approx(0.15) and quality_reason(lower, Drift()).grade == "escalate"


def test_large_files_are_sampled_to_max_rows(tmp_path: Path) -> None:
    from gitops_ml.monitor.sources import read_file

    from .conftest import make_project

    root = make_project(tmp_path / "project")
    with open(root / "pyproject.toml", "a", encoding="utf-8") as handle:
        handle.write("\n[tool.gitops-ml.drift]\nmax_rows = 1000\n")
    path = tmp_path / "big.parquet"
    drifted_batch(3000, "none", 8).to_parquet(path, index=False)
    rows = read_file(load_spec(root), str(path), None)
    assert rows.rows_read == 3000 and rows.rows_used == 1000 and rows.sampled
    assert rows.frame.equals(read_file(load_spec(root), str(path), None).frame)  # seeded


def test_a_reference_whose_fingerprint_disagrees_is_refused(released: Path, tmp_path: Path) -> None:
    root = copy_project(released, tmp_path / "project")
    spec = load_spec(root)
    tracking.connect(spec).set_model_version_tag(spec.model_name, "1", tracking.TAG_FINGERPRINT, "0" * 64)
    run = CliRunner().invoke(main, ["--project", str(root), "drift", "--env", "staging", "--current",
                                    str(batch_file(tmp_path, "none"))])
    assert run.exit_code == 1 and "the reference cannot be trusted" in run.output


def test_drift_and_feedback_refuse_a_log_that_is_switched_off(tmp_path: Path) -> None:
    from gitops_ml.errors import ConfigError
    from gitops_ml.monitor.feedback import join
    from gitops_ml.monitor.sources import read_inference_log

    from .conftest import make_project

    spec = load_spec(make_project(tmp_path / "p", extra='\n[tool.gitops-ml.serving]\ninference_log = "off"\n'))
    labels = tmp_path / "labels.csv"
    labels.write_text("request_id,churned\nabc,1\n")
    with pytest.raises(ConfigError, match='inference_log is "off": .* so drift has no traffic to compare; pass '
                                          "--current FILE"):
        read_inference_log(spec, 1, "7d")
    with pytest.raises(ConfigError, match='inference_log is "off": .* no logged predictions to join'):
        join(spec, str(labels), output=str(tmp_path / "out.parquet"))
    assert not (tmp_path / "out.parquet").exists() and not (tmp_path / "p" / "off").exists()


def test_the_inference_log_is_streamed_into_a_bounded_seeded_sample(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """12 objects of 500 rows, drift.max_rows 1000, chunks of 400: the reader must never hold the 6000 rows
    at once (the old reader concatenated them all, then sampled), yet count them all and draw evenly."""
    import pandas as pd

    from gitops_ml.monitor import sources
    from gitops_ml.serve.inference_log import LogWriter

    from .conftest import make_project

    location = f"memory://{tmp_path.name}/log"
    log = LogWriter(location, model_name="churn-classifier", model_version=1, data_fingerprint="ab" * 32,
                    capacity=1000, flush_seconds=0.05)  # an object every 500 rows
    for batch in range(12):
        log.submit([{"age": float(batch * 500 + i), "contract": "monthly"} for i in range(500)], [1] * 500)
        assert log.flush()
    log.close()
    assert len(log.objects) == 12
    extra = f'\n[tool.gitops-ml.serving]\ninference_log = "{location}"\n[tool.gitops-ml.drift]\nmax_rows = 1000\n'
    spec = load_spec(make_project(tmp_path / "p", extra=extra))
    monkeypatch.setattr(sources, "CHUNK_ROWS", 400)
    largest = 0
    concat = pd.concat

    def spy(frames, *args, **kwargs):
        nonlocal largest
        joined = concat(frames, *args, **kwargs)
        largest = max(largest, len(joined))
        return joined

    monkeypatch.setattr(pd, "concat", spy)
    rows = sources.read_inference_log(spec, 1, "7d")
    assert largest <= 1000 + 400 + 500  # the sample, one chunk and the object that filled it: never 6000
    assert (rows.rows_read, rows.rows_used, rows.sampled, rows.files) == (6000, 1000, True, 12)
    ages = rows.frame["age"]
    assert (ages < 2000).any() and (ages >= 4000).any()  # drawn from the whole window, not its head or tail
    assert rows.frame["timestamp"].is_monotonic_increasing and ages.is_unique
    assert rows.frame.equals(sources.read_inference_log(spec, 1, "7d").frame)  # seeded
