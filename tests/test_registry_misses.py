"""Registries that do not hold what git names: a fork's pull request (an empty embedded store while
production runs a model) keeps its absolute gates, and every miss says when MLFLOW_TRACKING_URI is unset."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gitops_ml import tracking
from gitops_ml.config import load_spec
from gitops_ml.errors import ConfigError
from gitops_ml.evaluate import evaluate
from gitops_ml.train import train
from tests.conftest import REPO


def test_a_registry_miss_on_the_embedded_store_says_the_tracking_uri_is_not_set(project: Path) -> None:
    spec = load_spec(project)
    client = tracking.connect(spec)
    with pytest.raises(ConfigError, match=r"MLFLOW_TRACKING_URI is not set: this is the project's own embedded store"):
        tracking.get_version(spec, client, 4)
    with pytest.raises(ConfigError, match=r"no registered version .*MLFLOW_TRACKING_URI is not set"):
        tracking.get_version(spec, client)


def test_a_miss_on_a_configured_registry_does_not_blame_the_variable(project: Path, monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project / 'other.db'}")
    spec = load_spec(project)
    with pytest.raises(ConfigError) as missing:
        tracking.get_version(spec, tracking.connect(spec), 4)
    assert "MLFLOW_TRACKING_URI is not set" not in str(missing.value)


def test_a_baseline_the_registry_lacks_skips_the_regression_gates_with_a_notice(project: Path) -> None:
    """Production runs v7 per git; this store (a fork's pull request) has only its own new v1."""
    manifest = project / "environments" / "production" / "release.yaml"
    shutil.copy(REPO / "environments" / "production" / "release.yaml", manifest)
    manifest.write_text(manifest.read_text().replace("\nversion: 1\n", "\nversion: 7\n"))
    spec = load_spec(project)
    trained = train(spec)
    result = evaluate(spec, trained.version)
    assert result.against == "production"
    assert result.baseline_version is None
    assert [g.kind for g in result.gates] == ["floor", "floor"]
    assert result.passed
    assert len(result.notices) == 1
    assert "regression gates skipped: production runs v7" in result.notices[0]
    assert "absolute gates still apply" in result.notices[0]


def test_a_missing_artifact_is_none_and_an_unreadable_store_is_named(project: Path, monkeypatch) -> None:
    """``download_artifact`` tells a file the run never logged (None: calibration of an older version)
    from a store that cannot be read (ArtifactStoreError, naming the store's settings)."""
    import mlflow

    spec = load_spec(project)
    client = tracking.connect(spec)
    with mlflow.start_run(experiment_id=tracking.experiment_id(spec, client)) as run:
        mlflow.log_text("kept", "notes/kept.txt")
    assert Path(tracking.download_artifact(client, run.info.run_id, "notes/kept.txt")).read_text() == "kept"
    assert tracking.download_artifact(client, run.info.run_id, "drift/calibration.json") is None

    def refused(*_args, **_kwargs):
        raise OSError("Connection refused")

    monkeypatch.setattr(client, "download_artifacts", refused)
    monkeypatch.setattr(client, "list_artifacts", refused)
    with pytest.raises(tracking.ArtifactStoreError, match=r"answers, but its artifact store does not: "
                       r"notes/kept.txt of run \w+ cannot be read \(Connection refused\); check the artifact store"):
        tracking.download_artifact(client, run.info.run_id, "notes/kept.txt")
