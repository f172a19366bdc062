"""validate -> train -> evaluate -> card with real MLflow: embedded sqlite and a real `mlflow server`."""

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from gitops_ml import tracking
from gitops_ml.cards import UNFILLED_MARKER, read_front_matter
from gitops_ml.cli import main
from gitops_ml.config import load_spec

from .conftest import EXAMPLE_DATA


def cli(root: Path, *args: str):
    return CliRunner().invoke(main, ["--project", str(root), *args])


def registered_versions(root: Path) -> list:
    spec = load_spec(root)
    client = tracking.connect(spec)
    try:
        return client.search_model_versions(f"name='{spec.model_name}'")
    except Exception:
        return []


def release(monkeypatch, env: str, version: int) -> None:
    """Stand in for a merged release manifest (the release tests cover real ones)."""
    from gitops_ml import release as releases

    monkeypatch.setattr(releases, "current_version", lambda spec, name: version if name == env else None)


def run_pipeline(root: Path) -> dict:
    assert cli(root, "validate").exit_code == 0
    trained = cli(root, "train", "--json")
    assert trained.exit_code == 0, trained.output
    result = json.loads(trained.stdout)
    evaluated = cli(root, "evaluate", str(result["version"]), "--json")
    assert evaluated.exit_code == 0, evaluated.output
    carded = cli(root, "card", str(result["version"]), "--json")
    assert carded.exit_code == 0, carded.output
    return {"train": result, "evaluate": json.loads(evaluated.stdout), "card": json.loads(carded.stdout)}


def test_embedded_pipeline_and_a_second_training(project):
    first = run_pipeline(project)
    assert set(first["train"]) >= {"model_name", "version", "run_id", "data_fingerprint", "metrics"}
    assert first["train"]["metrics"]["roc_auc"] > 0.75
    assert first["evaluate"]["passed"] is True
    assert {g["name"] for g in first["evaluate"]["gates"]} == {"roc_auc >= 0.75", "f1 >= 0.5"}

    card = Path(first["card"]["path"])
    front = read_front_matter(card)
    assert front["version"] == first["train"]["version"]
    assert front["data_fingerprint"] == first["train"]["data_fingerprint"]
    assert front["gates_passed"] is True
    assert UNFILLED_MARKER in card.read_text()
    assert (card.with_suffix("") / "roc.png").stat().st_size > 1000

    second = json.loads(cli(project, "train", "--json").stdout)
    assert second["version"] == first["train"]["version"] + 1
    assert second["run_id"] != first["train"]["run_id"]
    assert second["data_fingerprint"] == first["train"]["data_fingerprint"]

    # The version carries its lineage and gate outcome for promotion to read.
    spec = load_spec(project)
    version = tracking.get_version(spec, tracking.connect(spec), first["train"]["version"])
    assert version.data_fingerprint == first["train"]["data_fingerprint"]
    assert version.tags[tracking.TAG_GATES_PASSED] == "true"
    assert version.model_id.startswith("m-")


def test_floors_fail_with_exit_1_against_a_released_environment(trained_project, tmp_path, monkeypatch):
    from .conftest import copy_project

    root = copy_project(trained_project, tmp_path / "copy")
    # Tighten the floors beyond what the model reaches: evaluate must fail, exit 1, and say so.
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("roc_auc = 0.75", "roc_auc = 0.99"))
    release(monkeypatch, "production", 1)
    result = cli(root, "evaluate", "1", "--json")
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert payload["passed"] is False and payload["against"] == "production"
    failed = [g["name"] for g in payload["gates"] if not g["passed"]]
    assert failed == ["roc_auc >= 0.99"]
    assert "fails 1 gate(s): roc_auc >= 0.99" in result.output


def test_regression_against_the_environment_fails_the_gate(trained_project, tmp_path, monkeypatch):
    from .conftest import copy_project

    root = copy_project(trained_project, tmp_path / "copy")
    # A weaker candidate: the same pipeline trained on a sliver of the data.
    small = tmp_path / "small.csv"
    pd.read_csv(EXAMPLE_DATA).head(300).to_csv(small, index=False)
    weak = json.loads(cli(root, "train", "--data", str(small), "--json").stdout)
    release(monkeypatch, "staging", 1)
    result = cli(root, "evaluate", str(weak["version"]), "--against", "staging", "--json")
    payload = json.loads(result.stdout)
    kinds = {g["kind"]: g for g in payload["gates"]}
    assert payload["baseline_version"] == 1
    assert kinds["no-regression"]["passed"] is False
    assert result.exit_code == 1


def test_invalid_data_registers_nothing(project, tmp_path):
    frame = pd.read_csv(EXAMPLE_DATA, nrows=400).astype({"monthly_charges": object})
    frame.loc[10, "monthly_charges"] = "twelve"
    frame.loc[11, "contract"] = None
    bad = tmp_path / "bad.csv"
    frame.to_csv(bad, index=False)
    result = cli(project, "train", "--data", str(bad), "--json")
    assert result.exit_code == 1
    failures = {f["column"]: f for f in json.loads(result.stdout)["failures"]}
    assert failures["monthly_charges"]["values"] == ["twelve"]
    assert failures["contract"]["check"] == "not_nullable"
    assert "nothing was trained or registered" in result.output
    assert registered_versions(project) == []


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["evaluate", "7"], 2, "has no version 7"),
        (["evaluate", "seven"], 2, "version must be a whole number"),
        (["evaluate", "--against", "qa"], 2, "unknown environment 'qa'"),
        (["train", "--data", "missing.csv"], 2, "file not found"),
        (["card"], 2, "has no registered version"),
    ],
)
def test_bad_arguments(project, args, code, message):
    result = cli(project, *args)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert registered_versions(project) == []


@pytest.mark.slow
def test_pipeline_against_a_real_mlflow_server(project, mlflow_server):
    outcome = run_pipeline(project)
    client = MlflowClient(tracking_uri=mlflow_server.url, registry_uri=mlflow_server.url)
    [version] = client.search_model_versions("name='churn-classifier'")
    assert int(version.version) == outcome["train"]["version"]
    assert version.tags["data_fingerprint"] == outcome["train"]["data_fingerprint"]
    assert not (project / ".mlflow").exists()  # nothing went to the embedded store

    # A registry that stops answering: a clear message, exit 1, no traceback.
    mlflow_server.stop()
    result = cli(project, "evaluate", "1")
    assert result.exit_code == 1
    assert f"MLflow at {mlflow_server.url}" in result.output
