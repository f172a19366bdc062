"""Fixtures: the project's spec and sample data, and a scratch copy with its own MLflow store."""

import shutil
from pathlib import Path

import pandas as pd
import pytest
from gitops_ml.config import load_spec

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def spec():
    return load_spec(ROOT)


@pytest.fixture(scope="session")
def sample(spec) -> pd.DataFrame:
    return pd.read_csv(spec.data_uri)


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the project whose registry is a sqlite file in the test's folder, never a shared one."""
    copy = tmp_path / "project"
    copy.mkdir()
    for name in ("pyproject.toml", "data", "src"):
        source = ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, copy / name)
    (copy / "model_cards").mkdir()
    for env in ("staging", "production"):
        (copy / "environments" / env).mkdir(parents=True)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{copy / 'mlflow.db'}")
    monkeypatch.setenv("BENTOML_HOME", str(copy / ".bentoml"))
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    return copy
