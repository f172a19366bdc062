"""The pipeline's pull-request comment: every metric against what production runs, the gates, the
card, drift and run links, and the step that failed."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from gitops_ml.cli import main

from .conftest import EXAMPLE_DATA, copy_project
from .test_pipeline import release

ACTIONS = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/churn", "GITHUB_RUN_ID": "42"}
RUN_URL = "https://github.com/acme/churn/actions/runs/42"
CARD_URL = "https://github.com/acme/churn/actions/runs/42/artifacts/7"


def cli(root: Path, *args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, ["--project", str(root), *args], env=env)


@pytest.fixture
def weaker_candidate(trained_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Production runs v1; v2, trained on a sliver of the data, is evaluated against it and fails."""
    root = copy_project(trained_project, tmp_path / "copy")
    small = tmp_path / "small.csv"
    pd.read_csv(EXAMPLE_DATA).head(300).to_csv(small, index=False)
    assert cli(root, "train", "--data", str(small)).exit_code == 0
    release(monkeypatch, "production", 1)
    assert cli(root, "evaluate", "2").exit_code == 1
    return root


def test_a_failed_gate_comment_compares_every_metric_with_production_and_names_the_failed_step(weaker_candidate):
    outcomes = "validate=success train=success evaluate=failure card=skipped package=skipped smoke=skipped"
    done = cli(weaker_candidate, "pr-comment", "2", "--json",
               env={**ACTIONS, "OUTCOMES": outcomes, "CARD_URL": CARD_URL})  # fmt: skip
    assert done.exit_code == 0, done.output
    written = json.loads(done.stdout)
    assert written["failed_stage"] == "evaluate" and written["version"] == 2
    comment = (weaker_candidate / ".gitops-ml" / "pr-comment.md").read_text()
    assert comment.startswith("**:x: The pipeline failed at `make evaluate`**; `card`, `package`, `smoke` did not run")
    assert f"([the run's log]({RUN_URL}))" in comment
    assert "### churn-classifier v2 against production v1: a gate FAILED" in comment
    table = [line for line in comment.splitlines() if line.startswith("| roc_auc **(primary)**")]
    assert len(table) == 1 and table[0].endswith("(worse) |"), comment
    for metric in ("accuracy", "f1", "precision", "recall", "roc_auc"):
        assert f"| {metric}" in comment, metric  # every metric, not only the gated ones
    assert "| metric | v2 | production v1 | change |" in comment
    assert "**FAIL**" in comment
    # v2 has no card (its step was skipped): no link to an artifact that does not hold it.
    assert "not written (the card step did not run or failed)" in comment and CARD_URL not in comment
    assert "[the Drift workflow's runs](https://github.com/acme/churn/actions/workflows/drift.yml)" in comment


def test_a_passing_run_links_its_card_and_says_nothing_runs_yet(trained_project, tmp_path):
    root = copy_project(trained_project, tmp_path / "copy")
    outcomes = " ".join(f"{stage}=success" for stage in ("validate", "train", "evaluate", "card", "package", "smoke"))
    done = cli(root, "pr-comment", "1", env={**ACTIONS, "OUTCOMES": outcomes, "CARD_URL": CARD_URL})
    assert done.exit_code == 0, done.output
    comment = (root / ".gitops-ml" / "pr-comment.md").read_text()
    assert comment.startswith("### churn-classifier v1: all gates pass")
    assert "failed" not in comment
    assert f"[churn-classifier-v1.md]({CARD_URL})" in comment
    assert "No environment runs a model yet: only the absolute gates applied." in comment


def test_without_a_version_the_comment_says_training_registered_none(trained_project, tmp_path):
    root = copy_project(trained_project, tmp_path / "copy")
    outcomes = "validate=success train=failure evaluate=skipped card=skipped package=skipped smoke=skipped"
    done = cli(root, "pr-comment", env={**ACTIONS, "OUTCOMES": outcomes})
    assert done.exit_code == 0, done.output
    comment = (root / ".gitops-ml" / "pr-comment.md").read_text()
    assert comment.startswith("**:x: The pipeline failed at `make train`**; `evaluate`, `card`, `package`, `smoke`")
    assert "No model version was registered by this run" in comment
    assert "| roc_auc" not in comment


@pytest.mark.parametrize(
    ("outcomes", "message"),
    [
        ("validate=success deploy=success", "OUTCOMES: 'deploy=success' is not <stage>=<outcome>"),
        ("validate", "OUTCOMES: 'validate' is not <stage>=<outcome>"),
        ("train=maybe", "OUTCOMES: train='maybe': the outcome must be one of success, failure"),
    ],
)
def test_bad_outcomes_are_refused_and_no_comment_is_written(trained_project, tmp_path, outcomes, message):
    root = copy_project(trained_project, tmp_path / "copy")
    done = cli(root, "pr-comment", "1", env={"OUTCOMES": outcomes})
    assert done.exit_code == 2 and message in done.output, done.output
    assert not (root / ".gitops-ml" / "pr-comment.md").exists()
