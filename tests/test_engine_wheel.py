"""The engine installs on a fresh machine before it is published: ``engine_source=wheel`` keeps the
running engine's wheel in the generated repository, pinned by hash, and ``make setup`` installs it."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter

from gitops_ml import scaffold
from gitops_ml.engine_wheel import installed_from
from tests.conftest import REPO

PYTHON = ".".join(platform.python_version_tuple()[:2])


def test_the_engine_under_test_is_installed_from_this_checkout() -> None:
    assert installed_from() == ("source", REPO)


def test_wheel_source_without_a_wheel_is_refused_and_leaves_nothing(tmp_path: Path, capfd) -> None:
    with pytest.raises(FailedHookException):
        cookiecutter(str(REPO / "template"), no_input=True, output_dir=str(tmp_path),
                     extra_context={"engine_source": "wheel"})  # fmt: skip
    assert "_engine_wheel" in capfd.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_fresh_virtualenv_installs_the_vendored_engine_and_runs_make_all(tmp_path: Path) -> None:
    """gitops-ml new builds the wheel of the running engine; the bake's own make setup and make all
    run in a new virtualenv with nothing preinstalled (no VENV= shortcut)."""
    baked = scaffold.new({"engine_source": "wheel", "python_version": PYTHON}, tmp_path)
    requirement = (baked.path / "engine" / "requirements.txt").read_text()
    wheel = next((baked.path / "engine").glob("gitops_ml-*.whl"))
    assert f"./engine/{wheel.name} --hash=sha256:" in requirement
    environment = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    environment["PATH"] = os.pathsep.join(p for p in environment["PATH"].split(os.pathsep)
                                          if Path(p) != Path(sys.executable).parent)  # fmt: skip
    environment["PYTHON"] = sys._base_executable  # the interpreter, not this test run's virtualenv
    for target in ("setup", "all"):
        done = subprocess.run(["make", target], cwd=baked.path, env=environment, capture_output=True, text=True,
                              timeout=1500)  # fmt: skip
        assert done.returncode == 0, f"make {target}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    venv_python = baked.path / ".venv" / "bin" / "python"
    shown = subprocess.run([str(venv_python), "-c", "from importlib.metadata import distribution as d; "
                            "print(d('gitops-ml').read_text('direct_url.json'))"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    installed = json.loads(shown.stdout)
    assert installed["url"].endswith(f"/engine/{wheel.name}") and "archive_info" in installed
