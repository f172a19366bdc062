"""A dead registry is reported in seconds, not after MLflow's default retries (over four minutes).

The commands run as real processes with none of MLflow's HTTP retry variables set, so what is
measured is the engine's own bound. The 60 s limit is a regression guard on a shared machine,
not a performance target: each command took a few seconds here (see the report printed with -s).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gitops_ml import tracking

from .conftest import MlflowServer, copy_project, free_port
from .test_release import cli, git, init_repository

GUARD_SECONDS = 60  # MLflow's defaults take over 240 s; the engine's bound a few seconds


@pytest.fixture
def released(trained_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project whose staging manifest (v1) is committed on main, promoted with the embedded store."""
    root = copy_project(trained_project, tmp_path / "project")
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / "bentoml"))
    init_repository(root, tmp_path / "remote.git")
    code, out, _ = cli(root, "promote", "1", "--to", "staging")
    assert code == 0, out
    git(root, "add", "-A", "environments", "model_cards")
    git(root, "commit", "--quiet", "-m", "Release v1 to staging")
    return root


def run_against(root: Path, uri: str, *args: str) -> tuple[int, str, float]:
    """``gitops-ml`` in its own process against ``uri``, MLflow's retry settings left to the engine."""
    env = {k: v for k, v in os.environ.items() if k not in tracking.HTTP_DEFAULTS}
    env["MLFLOW_TRACKING_URI"] = uri
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "gitops_ml", "--project", str(root), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    elapsed = time.monotonic() - started
    print(f"{' '.join(args)} against {uri}: exit {done.returncode} in {elapsed:.1f} s")
    return done.returncode, done.stdout + done.stderr, elapsed


def assert_reported_quickly(root: Path, uri: str) -> None:
    before = (root / "environments" / "staging" / "release.yaml").read_text()
    for args in (("deploy", "staging"), ("status",), ("evaluate", "1")):
        code, output, elapsed = run_against(root, uri, *args)
        assert code == 1, (args, output)
        assert f"MLflow at {uri}" in output, (args, output)
        assert "Traceback" not in output
        assert elapsed < GUARD_SECONDS, (args, elapsed)
    assert (root / "environments" / "staging" / "release.yaml").read_text() == before
    assert git(root, "status", "--porcelain") == ""


def test_engine_sets_bounds_only_where_the_user_set_none(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in tracking.HTTP_DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "5")
    bounds = tracking.bound_http_retries()
    assert bounds["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "5"  # the user's choice is kept
    assert bounds["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] == tracking.HTTP_DEFAULTS["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"]
    assert bounds["MLFLOW_HTTP_REQUEST_TIMEOUT"] == tracking.HTTP_DEFAULTS["MLFLOW_HTTP_REQUEST_TIMEOUT"]


@pytest.mark.slow
def test_port_where_nothing_listens(released: Path) -> None:
    assert_reported_quickly(released, f"http://127.0.0.1:{free_port()}")


@pytest.mark.slow
def test_real_mlflow_server_that_was_stopped(released: Path, tmp_path: Path) -> None:
    server = MlflowServer(tmp_path / "mlflow-server").start()
    try:
        code, output, _ = run_against(released, server.url, "status")
        assert f"MLflow at {server.url}" not in output, output  # up: it answers (with nothing registered)
    finally:
        server.stop()
    assert_reported_quickly(released, server.url)
