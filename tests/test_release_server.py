"""Promotion against a real ``mlflow server``, and what happens when it goes away mid-flow."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gitops_ml import release
from gitops_ml.cards import write_card
from gitops_ml.config import load_spec
from gitops_ml.evaluate import evaluate
from gitops_ml.train import train

from .conftest import MlflowServer, make_project
from .test_release import alias, cli, fill_in_card, init_repository, merge, push, snapshot


@pytest.mark.slow
def test_registry_unreachable_fails_closed(mlflow_server: MlflowServer, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / "bentoml"))
    root = make_project(tmp_path / "work")
    spec = load_spec(root)
    assert spec.tracking == mlflow_server.url
    version = train(spec).version
    assert evaluate(spec, version).passed
    write_card(spec, version)
    init_repository(root, tmp_path / "remote.git")
    monkeypatch.chdir(root)

    # while the server is up: the whole staging loop, the alias set on the server
    code, out, _ = cli(root, "promote", str(version), "--to", "staging", "--branch")
    assert code == 0, out
    assert cli(root, "verify")[0] == 0
    push(root, f"promote/staging/v{version}")
    merge(root, f"promote/staging/v{version}")
    code, out, deployed = cli(root, "deploy", "staging", "--json")
    assert code == 0, out
    assert alias(root, "staging") == version
    assert deployed["model_uri"] == f"models:/churn-classifier/{version}"

    # production's pull request is open when the registry goes away
    assert cli(root, "promote", str(version), "--to", "production", "--branch", "--allow-unfilled")[0] == 0
    fill_in_card(root, version)
    git_commit_all(root, "Complete the model card")
    # Fail fast instead of MLflow's default seven retries with backoff (read on every request).
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    mlflow_server.stop()
    started = time.monotonic()
    before = snapshot(root)

    code, out, verified = cli(root, "verify", "--json")
    assert code == 1
    assert verified["checks"][0]["env"] == "production"
    assert any("registry cannot confirm the release" in r and mlflow_server.url in r
               for r in verified["reasons"]), verified
    for args in (("deploy", "production"), ("deploy", "staging"), ("status",),
                 ("promote", str(version), "--to", "production")):
        code, out, _ = cli(root, *args)
        assert code == 1 and f"MLflow at {mlflow_server.url}" in out, (args, out)
    assert snapshot(root) == before
    assert time.monotonic() - started < 60  # every refusal came quickly, none waited on retries
    assert release.current_version(load_spec(root), "production") == version  # git still says what it said


def git_commit_all(root: Path, message: str) -> None:
    from .test_release import git

    git(root, "commit", "--quiet", "-am", message)
