"""Drift end to end: drifted batches sent through a real served bento reach monitoring through its
inference log, and each severity gets its graded action (none, retrain with a branch, escalate)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gitops_ml import tracking
from gitops_ml.config import load_spec
from gitops_ml.example import drifted_batch
from gitops_ml.serve.package import package

from .conftest import copy_project
from .support.serving import predict_batches, project_environment, serving

GITOPS = str(Path(sys.executable).parent / "gitops-ml")
ROWS = 800  # above drift.min_rows (500), so the statement is sound
pytestmark = pytest.mark.slow


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def production(trained_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git project whose v1 runs in production (registry alias) and is packaged as a bento."""
    root = copy_project(trained_project, tmp_path_factory.mktemp("e2e") / "project")
    (root / ".gitignore").write_text(".mlflow/\n.bentoml/\nlogs/\n.gitops-ml/\n")
    git(root, "init", "-q", "--initial-branch=main")
    git(root, "config", "user.name", "Test")
    git(root, "config", "user.email", "test@example.com")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "v1 in production")
    spec = load_spec(root)
    tracking.connect(spec).set_registered_model_alias(spec.model_name, "production", "1")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("BENTOML_HOME", raising=False)
        package(spec, 1)
    return root


def serve_traffic(root: Path, severity: str, seed: int) -> Path:
    """Serve v1 (what the production alias names), send ROWS unlabelled rows, stop (which flushes the log)."""
    log_dir = root / "logs" / "inference"
    shutil.rmtree(log_dir, ignore_errors=True)  # each severity is judged on its own traffic
    batch = drifted_batch(ROWS, severity, seed=seed)
    with serving(root, log_name=f"serve-{severity}.log") as server:
        records = json.loads(batch.drop(columns=["churned"]).to_json(orient="records"))
        assert len(predict_batches(server.url, records)) == ROWS
    labelled = root / "data" / f"feedback-{severity}.csv"
    batch.to_csv(labelled, index=False)
    return labelled


def gitops(root: Path, *args: str) -> dict:
    done = subprocess.run([GITOPS, *args, "--json"], cwd=root, env=project_environment(root), capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_undrifted_traffic_needs_no_action(production):
    serve_traffic(production, "none", seed=21)
    drift = gitops(production, "drift", "--env", "production")
    assert drift["current"]["kind"] == "log" and drift["current"]["rows_used"] == ROWS
    assert drift["decision"] == "none", drift["reasons"]


def test_severe_traffic_escalates_with_an_issue_body(production):
    serve_traffic(production, "severe", seed=22)
    drift = gitops(production, "drift", "--env", "production")
    assert drift["decision"] == "escalate", drift["reasons"]
    assert drift["outputs"]["kind"] == "issue"
    assert "back to development" in Path(drift["outputs"]["title_file"]).read_text()
    assert Path(drift["outputs"]["body_file"]).read_text().strip()


def test_moderate_traffic_retrains_and_leaves_a_branch_whose_version_beat_the_gates(production):
    labelled = serve_traffic(production, "moderate", seed=23)
    pyproject = production / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + f'\n[tool.gitops-ml.drift]\nfeedback = "{labelled.name}"\n'
                         .replace(labelled.name, f"data/{labelled.name}"))
    git(production, "add", "-A")
    git(production, "commit", "-qm", "labelled recent data")
    drift = gitops(production, "drift", "--env", "production")
    assert drift["decision"] == "retrain", drift["reasons"]
    retrained = gitops(production, "retrain", "--env", "production", "--branch")
    assert retrained["outcome"] == "promoted", retrained["reasons"]
    assert retrained["evaluation"]["passed"] is True
    promotion = retrained["promotion"]
    assert promotion["branch"] == f"promote/staging/v{retrained['new_version']}"
    assert promotion["branch"] in git(production, "branch", "--list")
    title = Path(promotion["title_file"]).read_text().strip()
    assert title == f"Retrain churn-classifier: drift in {drift['drifted_features']} features"
