"""Shared fixtures: scratch projects on the bundled example, real MLflow, free ports."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitops_ml.processes import free_port, stop, wait_for  # noqa: F401 - tests import them from here

for _var, _value in (
    ("MLFLOW_DISABLE_TELEMETRY", "true"),
    ("BENTOML_DO_NOT_TRACK", "True"),
    ("DO_NOT_TRACK", "1"),
    ("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false"),
):
    os.environ[_var] = _value
os.environ.pop("MLFLOW_TRACKING_URI", None)
os.environ.pop("GITHUB_ACTIONS", None)

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_DATA = REPO / "src" / "gitops_ml" / "example" / "data" / "churn.csv"

PYPROJECT = """\
[project]
name = "scratch-project"
version = "0.0.1"

[tool.gitops-ml]
model_name = "churn-classifier"
task = "classification"
data = "data/churn.csv"
target = "churned"
time_column = "snapshot_date"
schema = "gitops_ml.example.schema:ChurnSchema"
model_factory = "gitops_ml.example.model:build_model"
{extra}
[tool.gitops-ml.gates]
thresholds = {{ roc_auc = 0.75, f1 = 0.5 }}
max_regression = 0.02
"""


def make_project(folder: Path, extra: str = "", rows: int | None = None) -> Path:
    """A minimal project on the bundled example: pyproject, data/, model_cards/, environments/."""
    (folder / "data").mkdir(parents=True, exist_ok=True)
    if rows:
        lines = EXAMPLE_DATA.read_text().splitlines(keepends=True)
        (folder / "data" / "churn.csv").write_text("".join(lines[: rows + 1]))
    else:
        shutil.copy(EXAMPLE_DATA, folder / "data" / "churn.csv")
    (folder / "pyproject.toml").write_text(PYPROJECT.format(extra=extra))
    for env in ("staging", "production"):
        (folder / "environments" / env).mkdir(parents=True, exist_ok=True)
    (folder / "model_cards").mkdir(exist_ok=True)
    return folder


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh scratch project with its own embedded MLflow store; the working directory is inside it."""
    root = make_project(tmp_path / "project")
    monkeypatch.chdir(root)
    monkeypatch.setenv("BENTOML_HOME", str(root / ".bentoml"))
    return root


@pytest.fixture(scope="session")
def trained_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with one trained, evaluated and carded version: for tests that only read it.

    Tests that change it must copy it (``copy_project``) so the session's copy stays as it is.
    """
    from gitops_ml.cards import write_card
    from gitops_ml.config import load_spec
    from gitops_ml.evaluate import evaluate
    from gitops_ml.train import train

    root = make_project(tmp_path_factory.mktemp("trained") / "project")
    spec = load_spec(root)
    result = train(spec)
    evaluate(spec, result.version)
    write_card(spec, result.version)
    return root


def copy_project(source: Path, destination: Path) -> Path:
    """A copy that keeps working: the embedded store's paths are absolute, so they are rewritten."""
    shutil.copytree(source, destination, symlinks=True)
    database = destination / ".mlflow" / "mlflow.db"
    if database.exists():
        import sqlite3

        old, new = (source / ".mlflow").resolve().as_uri(), (destination / ".mlflow").resolve().as_uri()
        with sqlite3.connect(database) as db:
            for table, column in (
                ("experiments", "artifact_location"),
                ("runs", "artifact_uri"),
                ("logged_models", "artifact_location"),
            ):
                db.execute(f"UPDATE {table} SET {column} = replace({column}, ?, ?)", (old, new))
    return destination


class MlflowServer:
    """A real ``mlflow server`` on 127.0.0.1, in its own process group."""

    def __init__(self, folder: Path, artifacts: str | None = None):
        self.folder = folder
        self.artifacts = artifacts  # an artifact destination URI (s3://...); default a folder beside the store
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> MlflowServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        log = open(self.folder / "server.log", "ab")  # noqa: SIM115 - the server process keeps it
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--backend-store-uri",
                f"sqlite:///{self.folder / 'mlflow.db'}",
                "--artifacts-destination",
                self.artifacts or str(self.folder / "artifacts"),
                "--workers",
                "1",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
        wait_for(f"{self.url}/health", timeout=90, process=self.process)
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)


@pytest.fixture
def mlflow_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MlflowServer]:
    """A real tracking server for one test; MLFLOW_TRACKING_URI points at it, and it is stopped after."""
    server = MlflowServer(tmp_path / "mlflow-server").start()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mlflow_on_s3(tmp_path: Path, s3, monkeypatch: pytest.MonkeyPatch) -> Iterator[MlflowServer]:
    """`mlflow server` with a sqlite store and its artifacts on the S3 server (MLFLOW_S3_ENDPOINT_URL, which
    the ``s3`` fixture sets, reaches the server's process); MLFLOW_TRACKING_URI points at it."""
    from tests.support.s3 import BUCKET

    server = MlflowServer(tmp_path / "mlflow-s3", artifacts=f"s3://{BUCKET}/mlflow").start()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    try:
        yield server
    finally:
        server.stop()


# -- the template: bakes and the repositories they become (tests/support/bake.py) ---------------------
@pytest.fixture
def baked_repository(tmp_path: Path):
    """A callable: ``baked_repository(**answers)`` bakes into this test's folder and pushes it to a bare
    origin; returns the working copy."""
    from tests.support.bake import bake, repository

    def make(**answers: str) -> Path:
        return repository(bake(tmp_path, **answers))

    return make


# -- object storage: a real S3 API on 127.0.0.1 (tests/support/s3.py) ---------------------------------
@pytest.fixture(scope="module")
def s3_server():
    """moto's S3 server on a free port of 127.0.0.1 with the test bucket made; stopped after the module."""
    from tests.support.s3 import s3_server as start

    with start() as server:
        yield server


@pytest.fixture
def s3(s3_server):
    """The S3 server, emptied for this test, with this process's credentials and endpoint pointing at it."""
    from tests.support.s3 import s3_environment

    s3_server.reset()
    with s3_environment(s3_server.endpoint, s3_server):
        yield s3_server


@pytest.fixture
def image_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A real image registry on 127.0.0.1, and skopeo told it has no TLS (tests/support/registry.py)."""
    from .support.registry import INSTALL, missing_tools, registry

    if missing := missing_tools():
        pytest.fail(f"{', '.join(missing)} not on PATH: {INSTALL}")
    with registry(tmp_path / "registry") as served:
        monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", str(served.folder / "registries.conf"))
        yield served


# -- real container images: buildah, podman, skopeo without a Docker daemon (tests/support/containers.py) --
@pytest.fixture(scope="session")
def container_images(tmp_path_factory: pytest.TempPathFactory):
    """A private image store holding the base image the bento's Dockerfile starts from, made once per run;
    the store (a few GB after a bento's build) is removed at the end of the session."""
    from .support.containers import INSTALL, PYTHON, container_store, make_base_image, missing_tools

    if missing := missing_tools():
        pytest.skip(f"{', '.join(missing)} not on PATH: {INSTALL}")
    if f"{sys.version_info.major}.{sys.version_info.minor}" != PYTHON:
        # The bento's Dockerfile starts FROM python:<the building interpreter's version>-slim.
        pytest.skip(
            f"the base image made here is Debian bookworm's Python {PYTHON}; this is Python "
            f"{sys.version_info.major}.{sys.version_info.minor}, whose bento asks for another base"
        )
    with container_store(tmp_path_factory.mktemp("containers")) as store:
        make_base_image(store)
        yield store
