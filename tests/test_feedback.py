"""Labels joined back onto logged predictions (`feedback join`), and drift runs that saw nothing.

The real command line on a copy of a trained project whose v1 is released to staging; the log is
written by the service's own ``LogWriter`` with request ids and traffic marks, as the served model
writes it (tests/test_serving.py and tests/test_production_traffic.py cover the served path).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import fsspec
import pandas as pd
import pytest
from click.testing import CliRunner
from fsspec.spec import AbstractFileSystem

from gitops_ml import release, tracking
from gitops_ml.cli import main
from gitops_ml.config import load_spec
from gitops_ml.example import drifted_batch
from gitops_ml.monitor import feedback
from gitops_ml.serve.inference_log import LogWriter

from .conftest import copy_project

GITOPS = str(Path(sys.executable).parent / "gitops-ml")
ROWS = 600  # above drift.min_rows (500)


@pytest.fixture(scope="module")
def released(trained_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = copy_project(trained_project, tmp_path_factory.mktemp("feedback") / "project")
    release.promote(load_spec(root), 1, "staging")
    return root


@pytest.fixture
def work(released: Path, tmp_path: Path) -> Path:
    return copy_project(released, tmp_path / "project")


def log_traffic(root: Path, frame: pd.DataFrame, prefix: str, traffic: str = "production",
                version: int = 1) -> list[str]:
    """Rows answered by v1 and logged as the service logs them; their request ids."""
    import mlflow

    spec = load_spec(root)
    tracking.connect(spec)
    model = mlflow.sklearn.load_model(f"models:/{spec.model_name}/1")
    features = frame.drop(columns=["churned"])
    ids = [f"{prefix}:{i}" for i in range(len(frame))]
    writer = LogWriter(spec.resolve(spec.serving.inference_log), model_name=spec.model_name, model_version=version,
                       data_fingerprint="test")
    rows = features.astype(object).where(features.notna(), None).to_dict("records")
    writer.submit(rows, model.predict(features).tolist(), model.predict_proba(features)[:, 1].tolist(),
                  request_ids=ids, traffic=traffic)
    writer.close()
    return ids


def run(root: Path, *args: str, github: Path | None = None) -> subprocess.CompletedProcess:
    """The installed `gitops-ml`, in a GitHub Actions job's environment when ``github`` is a folder."""
    env = {k: v for k, v in os.environ.items() if k not in ("BENTOML_HOME", "MLFLOW_TRACKING_URI")}
    if github is not None:
        github.mkdir(parents=True, exist_ok=True)
        env |= {"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(github / "output"),
                "GITHUB_STEP_SUMMARY": str(github / "summary.md")}
    return subprocess.run([GITOPS, "--project", str(root), *args], cwd=root, env=env, capture_output=True,
                          text=True, timeout=600)


def outputs(github: Path) -> dict[str, str]:
    lines = (github / "output").read_text().splitlines()
    return {line.split("<<")[0]: lines[i + 1] for i, line in enumerate(lines) if "<<" in line}


def declare_feedback(root: Path, path: str = "data/feedback.csv") -> None:
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + f'\n[tool.gitops-ml.drift]\nfeedback = "{path}"\n')


# -- feedback join ------------------------------------------------------------------------------
def test_join_reports_matched_unmatched_and_duplicates_and_feeds_drift(work: Path, tmp_path: Path) -> None:
    batch = drifted_batch(ROWS, "moderate", seed=31)
    ids = log_traffic(work, batch, "prod")
    log_traffic(work, batch.head(50), "smoke", traffic="smoke")  # never joined: not production
    # Labels: all but the last 20 predictions, two labels of ids never logged, and one smoke id.
    labels = batch[["churned"]].assign(request_id=ids).iloc[: ROWS - 20]
    labels = pd.concat([labels, pd.DataFrame({"request_id": ["ghost-1", "ghost-2", "smoke:0"],
                                              "churned": [0, 1, 1]})])
    labels[["request_id", "churned"]].to_csv(tmp_path / "labels.csv", index=False)
    declare_feedback(work)
    github = tmp_path / "github"
    done = run(work, "feedback", "join", str(tmp_path / "labels.csv"), "--json", github=github)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["matched"], result["unmatched_labels"], result["unlabelled_predictions"]) == (ROWS - 20, 3, 20)
    assert result["duplicate_logged_keys"] == 0 and result["duplicate_label_keys"] == []
    assert "ghost-1" in result["unmatched_examples"] and result["output"] == str(work / "data" / "feedback.csv")
    joined = pd.read_csv(work / "data" / "feedback.csv")
    assert len(joined) == ROWS - 20 and joined["request_id"].is_unique
    assert list(joined.columns[:12]) == list(pd.read_csv(work / "data" / "churn.csv").columns)
    assert {"prediction", "probability", "timestamp", "model_version"} <= set(joined.columns)
    by_id = joined.set_index("request_id")
    expected = batch.assign(request_id=ids).set_index("request_id")
    assert (by_id["churned"] == expected.loc[by_id.index, "churned"]).all()  # each label on its own row
    assert (by_id["tenure_months"] == expected.loc[by_id.index, "tenure_months"]).all()
    summary = (github / "summary.md").read_text()
    assert "### Feedback joined on `request_id`" in summary and f"| matched | {ROWS - 20} |" in summary
    assert outputs(github)["matched"] == str(ROWS - 20)
    # drift reads it: model quality on the joined rows; retrain would learn from the same file.
    drifted = run(work, "drift", "--env", "staging", "--json")
    assert drifted.returncode == 0, drifted.stderr
    payload = json.loads(drifted.stdout)
    assert payload["labelled"]["rows_used"] == ROWS - 20 and payload["quality"]["rows"] == ROWS - 20
    assert payload["current"]["rows_read"] == ROWS and payload["current"]["other_traffic"] == 50


def test_a_key_predicted_twice_joins_the_newest_prediction(work: Path, tmp_path: Path) -> None:
    batch = drifted_batch(40, "none", seed=32)
    log_traffic(work, batch, "same")
    newer = batch.assign(tenure_months=batch["tenure_months"] + 1)
    log_traffic(work, newer.head(10), "same")  # ids same:0..9 again, later
    pd.DataFrame({"request_id": [f"same:{i}" for i in range(40)], "churned": batch["churned"]}).to_csv(
        tmp_path / "labels.csv", index=False)
    result = feedback.join(load_spec(work), str(tmp_path / "labels.csv"), output=str(tmp_path / "out.parquet"))
    assert result.matched == 40 and result.duplicate_logged_keys == 10
    joined = pd.read_parquet(tmp_path / "out.parquet").set_index("request_id")
    assert joined.loc["same:3", "tenure_months"] == newer["tenure_months"].iloc[3]
    assert joined.loc["same:30", "tenure_months"] == batch["tenure_months"].iloc[30]


def test_duplicate_labels_are_refused_naming_the_keys_and_nothing_is_written(work: Path, tmp_path: Path) -> None:
    batch = drifted_batch(30, "none", seed=33)
    ids = log_traffic(work, batch, "dup")
    labels = pd.DataFrame({"request_id": [*ids, ids[4], ids[7]], "churned": [*batch["churned"], 1, 0]})
    labels.to_csv(tmp_path / "labels.csv", index=False)
    output = tmp_path / "feedback.csv"
    output.write_text("the previous feedback\n")
    github = tmp_path / "github"
    done = run(work, "feedback", "join", str(tmp_path / "labels.csv"), "-o", str(output), github=github)
    assert done.returncode == 1, done.stderr
    assert "dup:4" in done.stderr and "dup:7" in done.stderr and "labelled more than once" in done.stderr
    assert output.read_text() == "the previous feedback\n"
    assert "::error file=" in done.stdout and "dup:4" in done.stdout
    assert "keys labelled more than once (refused) | 2 |" in (github / "summary.md").read_text()


def test_output_is_written_whole_or_not_at_all(work: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    batch = drifted_batch(30, "none", seed=34)
    ids = log_traffic(work, batch, "atomic")
    pd.DataFrame({"request_id": ids, "churned": batch["churned"]}).to_csv(tmp_path / "labels.csv", index=False)
    output = tmp_path / "out" / "feedback.csv"
    output.parent.mkdir()
    output.write_text("the previous feedback\n")

    def crash(*_args, **_kwargs):
        raise OSError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(feedback.os, "replace", crash)  # the rename never happens: as if killed before it
        with pytest.raises(OSError, match="disk full"):
            feedback.join(load_spec(work), str(tmp_path / "labels.csv"), output=str(output))
    assert output.read_text() == "the previous feedback\n"
    assert sorted(p.name for p in output.parent.iterdir()) == ["feedback.csv"]  # no temporary file left
    feedback.join(load_spec(work), str(tmp_path / "labels.csv"), output=str(output))
    assert len(pd.read_csv(output)) == 30


def test_join_on_the_id_column_keeps_leading_zeros(work: Path, tmp_path: Path) -> None:
    """A key read from CSV as text: "007" stays "007" (the log holds what the request sent)."""
    frame = pd.DataFrame({"cid": ["007", "010"], "churned": [1, 0]})
    frame.to_csv(tmp_path / "labels.csv", index=False)
    read = feedback.read_labels(load_spec(work), str(tmp_path / "labels.csv"), "cid")
    assert read["cid"].tolist() == ["007", "010"]


# -- drift never pretends ------------------------------------------------------------------------
def test_no_release_is_a_notice_and_exit_0(work: Path, tmp_path: Path) -> None:
    github = tmp_path / "github"
    done = run(work, "drift", "--env", "production", "--json", github=github)
    assert done.returncode == 0, done.stderr
    assert "::notice title=drift%3A no release in production::" in done.stderr
    payload = json.loads(done.stdout)
    assert payload["decision"] == "no_release" and not payload["monitored"]
    assert outputs(github)["decision"] == "no_release"
    assert "nothing released yet" in (github / "summary.md").read_text()
    assert (work / ".gitops-ml" / "drift" / "summary.json").is_file()  # the report artifact is never missing


def test_a_log_location_that_does_not_exist_is_a_warning(work: Path, tmp_path: Path) -> None:
    github = tmp_path / "github"
    done = run(work, "drift", "--env", "staging", github=github)
    assert done.returncode == 0, done.stderr
    assert "::warning title=drift%3A no traffic of churn-classifier v1 seen::monitoring saw nothing" in done.stdout
    assert "does not exist here" in done.stdout and str(work / "logs" / "inference") in done.stdout
    summary = (github / "summary.md").read_text()
    assert "### Monitoring saw nothing" in summary and "does not exist here" in summary
    assert outputs(github)["monitored"] == "false" and outputs(github)["decision"] == "insufficient_data"


def test_a_log_of_only_smoke_and_other_versions_is_a_warning(work: Path, tmp_path: Path) -> None:
    batch = drifted_batch(40, "none", seed=35)
    log_traffic(work, batch, "smoke", traffic="smoke")
    log_traffic(work, batch.head(5), "old", version=7)
    github = tmp_path / "github"
    done = run(work, "drift", "--env", "staging", "--json", github=github)
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["decision"] == "insufficient_data" and not payload["monitored"]
    assert "no production rows of v1 in the last 7d" in payload["saw_nothing"]
    assert "40 rows of smoke or check traffic" in payload["saw_nothing"]
    assert "5 rows other model versions answered" in payload["saw_nothing"]
    assert "::warning" in done.stderr  # under --json the annotations go to stderr


def test_an_empty_log_directory_is_a_warning(work: Path, tmp_path: Path) -> None:
    (work / "logs" / "inference").mkdir(parents=True)
    done = run(work, "drift", "--env", "staging", "--json", github=tmp_path / "github")
    assert done.returncode == 0, done.stderr
    assert "holds no log files" in json.loads(done.stdout)["saw_nothing"]


def test_a_location_without_its_driver_fails_naming_it(work: Path) -> None:
    pyproject = work / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + '\n[tool.gitops-ml.serving]\ninference_log = "gs://team-logs/churn"\n')
    done = run(work, "drift", "--env", "staging")
    assert done.returncode == 1, done.stderr
    assert "gs://team-logs/churn" in done.stderr and "gcsfs" in done.stderr and "Traceback" not in done.stderr


class DeniedFileSystem(AbstractFileSystem):
    """A store that refuses these credentials, as s3fs does (PermissionError) for a bad key."""

    protocol = "denied"

    def exists(self, path, **kwargs):
        raise PermissionError("The AWS Access Key Id you provided does not exist in our records.")

    ls = info = exists


def test_refused_credentials_fail_naming_the_location(work: Path) -> None:
    fsspec.register_implementation("denied", DeniedFileSystem, clobber=True)
    pyproject = work / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + '\n[tool.gitops-ml.serving]\ninference_log = "denied://bucket/log"\n')
    run_ = CliRunner().invoke(main, ["--project", str(work), "drift", "--env", "staging"])
    assert run_.exit_code == 1, run_.output
    assert "denied://bucket/log" in run_.output and "PermissionError" in run_.output
