"""The template's object_store question (issue 13 item 2): the driver extra in the generated pyproject, the
log location in [tool.gitops-ml.serving], the credentials by secret name in the Drift and Retrain jobs'
env (never in a run: line) and in the README's secrets table; zizmor and the workflow schema stay clean.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from gitops_ml.config import load_spec

from .support.bake import bake

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow

SECRETS = {
    "s3": ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"),
    "gcs": ("FSSPEC_GCS",),
    "azure": ("AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT_KEY"),
}
SCHEME = {"s3": "s3", "gcs": "gs", "azure": "az"}
STORAGE_VARIABLES = {name for names in SECRETS.values() for name in names}


@pytest.mark.parametrize("store", ["s3", "gcs", "azure"])
def test_an_object_store_bakes_its_extra_location_and_secrets(tmp_path, store):
    project = bake(tmp_path, object_store=store, object_store_bucket="acme-mlops", mlops_level="2")
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    [engine] = [d for d in pyproject["project"]["dependencies"] if d.startswith("gitops-ml")]
    assert engine.startswith(f"gitops-ml[{store}]")
    location = f"{SCHEME[store]}://acme-mlops/customer-churn/inference"
    serving = pyproject["tool"]["gitops-ml"]["serving"]
    assert serving == {"inference_log": location, "log_rotate_mb": 16.0, "log_rotate_age": "60s"}
    assert load_spec(project).serving.inference_log == location  # the engine reads what was baked

    drift = yaml.safe_load((project / ".github/workflows/drift.yml").read_text())
    for job in ("drift", "retrain"):
        env = drift["jobs"][job]["env"]
        for name in SECRETS[store]:
            assert env[name] == f"${{{{ secrets.{name} }}}}", (job, name)
        assert not (STORAGE_VARIABLES - set(SECRETS[store])) & set(env)  # only this store's credentials
    # Secrets only in env: never in a step's run: text.
    for job in drift["jobs"].values():
        for step in job.get("steps", []):
            assert "secrets." not in step.get("run", ""), step

    readme = (project / "README.md").read_text()
    for name in SECRETS[store]:
        assert f"`{name}`" in readme
    assert location in readme and f"gitops-ml[{store}]" in readme

    files = sorted(str(p) for p in (project / ".github" / "workflows").glob("*.yml"))
    schema = subprocess.run([BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", *files],
                            capture_output=True, text=True, timeout=120)
    assert schema.returncode == 0, schema.stdout + schema.stderr
    audit = subprocess.run([BIN / "zizmor", "--offline", "--no-progress", str(project / ".github")],
                           capture_output=True, text=True, timeout=120)
    assert audit.returncode == 0, audit.stdout + audit.stderr


def test_no_object_store_bakes_no_extra_and_no_storage_secrets(tmp_path):
    project = bake(tmp_path, mlops_level="2")
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert [d for d in pyproject["project"]["dependencies"] if d.startswith("gitops-ml")][0].startswith("gitops-ml==")
    assert "serving" not in pyproject["tool"]["gitops-ml"]
    drift = yaml.safe_load((project / ".github/workflows/drift.yml").read_text())
    assert not STORAGE_VARIABLES & (set(drift["jobs"]["drift"]["env"]) | set(drift["jobs"]["retrain"]["env"]))
    assert "pip install 'gitops-ml[s3]'" in (project / "README.md").read_text()


def test_level_0_with_an_object_store_has_no_drift_workflow_but_the_extra_and_secrets(tmp_path):
    project = bake(tmp_path, object_store="s3", mlops_level="0")
    assert not (project / ".github/workflows/drift.yml").exists()
    assert '"gitops-ml[s3]==' in (project / "pyproject.toml").read_text()
    assert "`AWS_ACCESS_KEY_ID`" in (project / "README.md").read_text()
