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
