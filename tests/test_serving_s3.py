"""The served model with its inference log on S3 (moto's server on 127.0.0.1), and MLflow keeping its
artifacts there: a real `gitops-ml serve` flushes what it holds on SIGTERM; train, evaluate and package
work through an `mlflow server --artifacts-destination s3://...`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gitops_ml.config import load_spec
from gitops_ml.serve.inference_log import read_log
from gitops_ml.serve.package import package
from gitops_ml.serve.smoke import call, sample_rows

from .conftest import copy_project, free_port, make_project, stop, wait_for
from .support.s3 import BUCKET

GITOPS = str(Path(sys.executable).parent / "gitops-ml")
pytestmark = pytest.mark.slow


def with_serving(root: Path, settings: str) -> None:
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(
        "[tool.gitops-ml.gates]", f"[tool.gitops-ml.serving]\n{settings}\n\n[tool.gitops-ml.gates]"))


def test_sigterm_flushes_the_rows_a_real_server_holds_to_s3(trained_project, tmp_path, s3, monkeypatch):
    location = f"s3://{BUCKET}/sigterm/inference"
    root = copy_project(trained_project, tmp_path / "project")
    # An hour's rotation: nothing is uploaded before the SIGTERM, so only the flush can ship the rows.
    with_serving(root, f'inference_log = "{location}"\nlog_rotate_age = "1h"\nlog_flush_timeout = "30s"')
    monkeypatch.delenv("BENTOML_HOME", raising=False)
    spec = load_spec(root)
    result = package(spec)
    assert any(line.startswith("s3fs==") for line in _bento_packages(root, result.bento_tag))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("BENTOML_HOME", "MLFLOW_TRACKING_URI")}
    env |= {"GITOPS_ML_PROJECT": str(root)} | s3.environment()
    with open(root / "serve.log", "ab") as server_log:
        process = subprocess.Popen([GITOPS, "serve", "1", "--port", str(port)], cwd=root, env=env,
                                   stdout=subprocess.DEVNULL, stderr=server_log, start_new_session=True)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for(f"{url}/readyz", timeout=120, process=process)
            assert call(f"{url}/metadata").json()["inference_log"] == location
            columns = [c["name"] for c in call(f"{url}/metadata").json()["contract"]["columns"]]
            records = sample_rows(spec, columns, 30)
            assert all(call(f"{url}/predict", "POST", record).status == 200 for record in records[:20])
            assert call(f"{url}/predict_batch", "POST", records[20:]).status == 200
            assert read_log(location).rows == 0  # held by the writer, not yet uploaded
        finally:
            stop(process, grace=60)  # SIGTERM; the server exits on its own within the flush timeout
    assert process.returncode is not None
    read = read_log(location)
    assert read.rows == 30 and read.corrupt_objects == 0, (root / "serve.log").read_text()[-3000:]


def _bento_packages(root: Path, tag: str) -> list[str]:
    name, version = tag.split(":")
    build = root / ".bentoml" / "bentos" / name / version / "src" / "bentofile.yaml"
    import yaml

    return yaml.safe_load(build.read_text())["python"]["packages"]


def test_train_evaluate_and_package_through_an_mlflow_server_on_s3(tmp_path, s3, mlflow_on_s3, monkeypatch):
    from gitops_ml.evaluate import evaluate
    from gitops_ml.train import train

    root = make_project(tmp_path / "project")
    monkeypatch.setenv("BENTOML_HOME", str(root / ".bentoml"))
    spec = load_spec(root)
    trained = train(spec)
    evaluate(spec, trained.version)  # reads the logged reference rows back through the server
    artifacts = s3.keys(prefix="mlflow/")
    assert any(key.endswith("MLmodel") for key in artifacts), artifacts[:20]  # the model lives on S3
    result = package(spec, trained.version)  # downloads the model from S3 through the server
    assert result.model_version == trained.version
    assert not (root / ".mlflow").exists()  # nothing fell back to an embedded store
