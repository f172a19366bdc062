"""Metrics by group with real training, MLflow, cards, promotion and drift (issue 18, part 1).

A synthetic project where one region is deliberately badly served (its labels are coin flips) fails
the gap gate and cannot be released; the same data without that region passes. Groups under the
row minimum are reported, not dropped; the card and the promotion pull request carry the groups;
drift says when a group's share of traffic moved.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from gitops_ml.cards import UNFILLED_MARKER
from gitops_ml.cli import main
from gitops_ml.config import Slices
from gitops_ml.example import drifted_batch
from gitops_ml.slices import ColumnSlices, Group, SliceReport, gates, group_labels, share_shifts

from .conftest import EXAMPLE_DATA, make_project

MODEL = "churn-classifier"
ROWS = 3000  # 600 held-out rows: about 150 a region, 30 with no region
SLICES = """
[tool.gitops-ml.slices]
columns = ["region", "contract"]
min_rows = 50
max_gap = 0.2
"""


def cli(root: Path, *args: str):
    return CliRunner().invoke(main, ["--project", str(root), *args], catch_exceptions=False)


def registry(root: Path) -> MlflowClient:
    uri = f"sqlite:///{root / '.mlflow' / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def sliced_project(folder: Path, frame: pd.DataFrame, slices: str = SLICES) -> Path:
    root = make_project(folder)
    frame.to_csv(root / "data" / "churn.csv", index=False)
    pyproject = root / "pyproject.toml"
    # The overall floors are not what these tests are about: keep them out of the way.
    text = pyproject.read_text().replace("roc_auc = 0.75, f1 = 0.5", "roc_auc = 0.6")
    pyproject.write_text(text + slices)
    return root


def sample() -> pd.DataFrame:
    return pd.read_csv(EXAMPLE_DATA, nrows=ROWS)


def badly_served_west() -> pd.DataFrame:
    """West's churn labels are coin flips: nothing the model reads predicts them."""
    frame = sample()
    west = frame["region"] == "west"
    frame.loc[west, "churned"] = np.random.default_rng(0).integers(0, 2, int(west.sum()))
    return frame


def train_and_evaluate(root: Path) -> tuple[int, dict]:
    trained = cli(root, "train", "--json")
    assert trained.exit_code == 0, trained.output
    version = json.loads(trained.stdout)["version"]
    evaluated = cli(root, "evaluate", str(version), "--json")
    return evaluated.exit_code, json.loads(evaluated.stdout)


def group(payload: dict, column: str, value: str) -> dict:
    found = next(c for c in payload["slices"]["columns"] if c["column"] == column)
    return next(g for g in found["groups"] if g["value"] == value)


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / ".bentoml"))


def test_a_badly_served_group_fails_the_gap_gate_and_nothing_is_released(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = sliced_project(tmp_path / "bad", badly_served_west())
    trained = cli(root, "train", "--json")
    assert trained.exit_code == 0, trained.output
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    evaluated = cli(root, "evaluate", "1", "--json")
    code, payload = evaluated.exit_code, json.loads(evaluated.stdout)
    monkeypatch.delenv("GITHUB_ACTIONS")
    # The step summary has the groups; the failed slice gate is an error annotation.
    summary = (tmp_path / "summary.md").read_text()
    assert "#### roc_auc by group" in summary and "| region | west |" in summary
    assert "::error title=Slice gate failed::roc_auc gap <= 0.2 across region" in evaluated.stderr
    assert code == 1, payload
    assert payload["passed"] is False
    west = group(payload, "region", "west")
    others = [group(payload, "region", r)["metric"] for r in ("north", "south", "east")]
    assert west["judged"] and west["metric"] < min(others) - 0.2, (west, others)
    failed = [g for g in payload["gates"] if not g["passed"]]
    assert [g["kind"] for g in failed] == ["group-gap"] and "across region" in failed[0]["name"]
    assert "west" in failed[0]["name"] and failed[0]["value"] > 0.2
    # The overall gate passes: only the groups show the harm.
    assert all(g["passed"] for g in payload["gates"] if g["kind"] == "floor")

    # Fail closed: the version cannot be released, no alias moves, no manifest is written.
    assert cli(root, "card", "1").exit_code == 0
    promoted = cli(root, "promote", "1", "--to", "staging")
    assert promoted.exit_code == 1 and "failed its gates" in promoted.output, promoted.output
    assert "across region" in promoted.output
    assert not (root / "environments" / "staging" / "release.yaml").exists()
    assert dict(registry(root).get_registered_model(MODEL).aliases) == {}


def test_the_same_data_without_that_group_passes_and_small_groups_are_listed(tmp_path: Path) -> None:
    frame = badly_served_west()
    root = sliced_project(tmp_path / "good", frame[frame["region"] != "west"])
    code, payload = train_and_evaluate(root)
    assert code == 0, payload["gates"]
    region = next(c for c in payload["slices"]["columns"] if c["column"] == "region")
    assert [g["value"] for g in region["groups"]] == ["east", "north", "south", "(missing)"]
    missing = group(payload, "region", "(missing)")
    # Too small to judge: reported with its count and the reason, left out of the gap.
    assert missing["rows"] < 50 and missing["judged"] is False
    assert "too small to judge" in missing["note"] and "min_rows 50" in missing["note"]
    judged = [g["metric"] for g in region["groups"] if g["judged"]]
    assert region["gap"] == pytest.approx(max(judged) - min(judged))
    assert any("(missing)" in n and "too small to judge" in n for n in payload["notices"])
    gaps = {g["name"].split(" (")[0]: g for g in payload["gates"] if g["kind"] == "group-gap"}
    assert set(gaps) == {"roc_auc gap <= 0.2 across region", "roc_auc gap <= 0.2 across contract"}

    # The model card: the per-group table, its plot, and the measured gaps before the person's part.
    carded = cli(root, "card", "1")
    assert carded.exit_code == 0, carded.output
    card = (root / "model_cards" / f"{MODEL}-v1.md").read_text()
    evaluation = card.split("## Evaluation", 1)[1].split("## Limitations", 1)[0]
    assert "### roc_auc by group" in evaluation
    assert "| column | group | rows | roc_auc | positive rate | judged |" in evaluation
    assert f"| region | (missing) | {missing['rows']} |" in evaluation
    assert f"| region | east | {group(payload, 'region', 'east')['rows']} | " in evaluation
    assert "(metric_by_group.png)" in evaluation or "metric_by_group.png)" in evaluation
    assert (root / "model_cards" / f"{MODEL}-v1" / "metric_by_group.png").stat().st_size > 5000
    ethics = card.split("## Ethical considerations", 1)[1].split("\n## ", 1)[0]
    assert ethics.lstrip().startswith("<!-- measured by gitops-ml card")
    assert f"`region`: roc_auc gap {region['gap']:.4f}" in ethics
    assert UNFILLED_MARKER in ethics.split("<!-- end of measured -->", 1)[1]  # the judgement is still owed

    # A person writes the judgement; writing the card again keeps it and refreshes the numbers.
    person = "Regions are served alike within the gates; no sensitive attribute is sliced yet."
    card_path = root / "model_cards" / f"{MODEL}-v1.md"
    card_path.write_text(card.replace(f"<!-- {UNFILLED_MARKER}: people affected, sensitive features, "
                                      "fairness checks owed. -->", person))  # fmt: skip
    assert cli(root, "card", "1").exit_code == 0
    again = card_path.read_text().split("## Ethical considerations", 1)[1]
    assert person in again and again.count("<!-- measured by gitops-ml card") == 1


def test_the_promotion_pull_request_compares_groups_with_what_the_environment_runs(tmp_path: Path) -> None:
    frame = sample()
    frame = frame[frame["region"] != "west"]
    root = sliced_project(tmp_path / "promote", frame, slices="")
    pyproject = root / "pyproject.toml"
    # v1 is evaluated before slices were configured: it records no groups.
    code, _ = train_and_evaluate(root)
    assert code == 0
    assert cli(root, "card", "1").exit_code == 0
    assert cli(root, "promote", "1", "--to", "staging").exit_code == 0
    manifest = root / "environments" / "staging" / "release.yaml"
    runs_v1 = manifest.read_text()

    pyproject.write_text(pyproject.read_text() + SLICES)
    trained = cli(root, "train", "--json")
    assert trained.exit_code == 0, trained.output
    # Evaluated against production, which runs nothing: no same-rows baseline for the groups.
    assert cli(root, "evaluate", "2", "--against", "production").exit_code == 0
    assert cli(root, "card", "2").exit_code == 0
    promoted = cli(root, "promote", "2", "--to", "staging", "--json")
    assert promoted.exit_code == 0, promoted.output
    body = Path(json.loads(promoted.stdout)["body_file"]).read_text()
    assert "### roc_auc by group" in body
    assert "v1 (staging now) has no per-group metrics recorded" in body
    assert "| column | group | rows | v2 | positive rate | judged |" in body

    # Evaluated against staging: both scored on the same rows, side by side in the pull request.
    manifest.write_text(runs_v1)
    evaluated = cli(root, "evaluate", "2", "--json")
    assert evaluated.exit_code == 0, evaluated.output
    payload = json.loads(evaluated.stdout)
    assert payload["baseline_version"] == 1 and payload["baseline_slices"]["columns"]
    promoted = cli(root, "promote", "2", "--to", "staging", "--json")
    assert promoted.exit_code == 0, promoted.output
    body = Path(json.loads(promoted.stdout)["body_file"]).read_text()
    assert "Both scored on v2's held-out rows" in body
    assert "| column | group | rows | v2 | v1 (staging now) | positive rate | judged |" in body
    east_now = group({"slices": payload["baseline_slices"]}, "region", "east")["metric"]
    assert f"| region | east | {group(payload, 'region', 'east')['rows']} | " in body
    assert f"| {east_now:.4f} |" in body
    assert "- `region`: gap " in body


def test_drift_reports_a_group_whose_share_of_traffic_moved(tmp_path: Path) -> None:
    root = sliced_project(tmp_path / "drift", sample())
    code, _ = train_and_evaluate(root)
    assert code == 0
    registry(root).set_registered_model_alias(MODEL, "staging", "1")

    unshifted = drifted_batch(1500, "none", seed=3).drop(columns=["churned"])
    batch = drifted_batch(4000, "none", seed=4).drop(columns=["churned"])
    west = batch[batch["region"] == "west"]
    shifted = pd.concat([west.head(600), batch[batch["region"] != "west"].head(900)])  # west: 20 % -> 40 %
    results = {}
    for name, frame in (("unshifted", unshifted), ("shifted", shifted)):
        path = tmp_path / f"{name}.csv"
        frame.to_csv(path, index=False)
        run = cli(root, "drift", "--env", "staging", "--current", str(path), "--output-dir",
                  str(tmp_path / name), "--json")  # fmt: skip
        assert run.exit_code == 0, run.output
        results[name] = json.loads(run.stdout)

    assert results["unshifted"]["groups_moved"] == []
    assert {(s["column"], s["group"]) for s in results["unshifted"]["group_shares"]} >= {
        ("region", "west"), ("contract", "two-year")}
    moved = results["shifted"]["groups_moved"]
    assert ("region", "west") in {(s["column"], s["group"]) for s in moved}
    west_share = next(s for s in moved if s["group"] == "west")
    assert west_share["reference"] == pytest.approx(0.2, abs=0.03) and west_share["current"] == pytest.approx(0.4)
    assert any(r["signal"] == "group_share" and "region=west" in r["message"] for r in results["shifted"]["reasons"])
    summary = (tmp_path / "shifted" / "summary.md").read_text()
    assert "Traffic share by group" in summary and "| region | west |" in summary and "**moved**" in summary


def test_group_shares_bin_numbers_and_keep_missing_values() -> None:
    config = Slices(columns=["age", "region"], bins={"age": [30.0, 60.0]}, share_shift=0.1)
    reference = pd.DataFrame({"age": [20.0, 40.0, 70.0, None] * 5, "region": ["north", None, "west", "west"] * 5})
    assert list(group_labels(reference, "age", config)[:4]) == ["< 30", "30 to < 60", ">= 60", "(missing)"]
    current = pd.DataFrame({"age": [70.0] * 8 + [20.0] * 2, "region": ["west"] * 10})
    shifts = {(s.column, s.group): s for s in share_shifts(config, reference, current)}
    assert shifts[("age", ">= 60")].change == pytest.approx(0.55) and shifts[("age", ">= 60")].moved
    assert shifts[("age", "< 30")].change == pytest.approx(-0.05) and not shifts[("age", "< 30")].moved
    assert shifts[("region", "(missing)")].current == 0.0 and shifts[("region", "(missing)")].moved


def test_a_column_without_groups_to_judge_gets_notices_not_gates() -> None:
    config = Slices(columns=["region"], min_rows=100, min_metric=0.7, max_gap=0.1, max_parity_difference=0.1)
    small = [Group("region", name, 40, 0.6, 0.3, judged=False, note="too small to judge (40 rows < min_rows 100)")
             for name in ("east", "west")]  # fmt: skip
    one = SliceReport("roc_auc", 100, [ColumnSlices("region", [*small, Group("region", "north", 500, 0.9, 0.2)])])
    found, notices = gates(config, SliceReport("roc_auc", 100, [ColumnSlices("region", small)]))
    assert found == [] and len(notices) == 3
    assert "east (40 rows), west (40 rows)" in notices[0] and "floor in every group does not apply" in notices[1]
    assert "0 group(s) large enough to judge" in notices[2]
    found, notices = gates(config, one)
    assert [(g.kind, g.value, g.passed) for g in found] == [("group-floor", 0.9, True)]
    assert "1 group(s) large enough" in notices[-1]
