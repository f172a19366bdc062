"""``gitops-ml changed-environments``: what deploy.yml acts on, in the declared order."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from gitops_ml import release
from gitops_ml.cli import main
from gitops_ml.config import load_spec
from gitops_ml.errors import ConfigError

from .conftest import REPO
from .support.workflow_runner import read_commands_file


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            "[tool.gitops-ml.release]\n", '[tool.gitops-ml.release]\nenvironments = ["qa", "staging", "production"]\n'
        )
    )
    return tmp_path


def test_changed_manifests_in_declared_order(project: Path) -> None:
    spec = load_spec(project)
    paths = [
        "environments/production/release.yaml",
        "environments/qa/release.yaml",
        "environments/staging/notes.md",
        "model_cards/environments/staging/release.yaml",
    ]
    assert release.changed_environments(spec, "", paths) == ["qa", "production"]
    assert release.changed_environments(spec, "staging", paths) == ["staging"]
    assert release.changed_environments(spec, "", []) == []
    with pytest.raises(ConfigError, match="unknown environment 'prod'"):
        release.changed_environments(spec, "prod", paths)


def test_command_reads_the_last_commit(project: Path) -> None:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=project, check=True)
    subprocess.run([*git, "add", "-A"], cwd=project, check=True)
    subprocess.run([*git, "commit", "-qm", "start"], cwd=project, check=True)
    for env in ("production", "qa"):
        (project / "environments" / env).mkdir(parents=True)
        (project / "environments" / env / "release.yaml").write_text("version: 1\n")  # not parsed: paths only
    subprocess.run([*git, "add", "-A"], cwd=project, check=True)
    subprocess.run([*git, "commit", "-qm", "release"], cwd=project, check=True)

    def run(*args: str, **env: str) -> tuple[int, str]:
        done = CliRunner().invoke(main, ["--project", str(project), "changed-environments", *args], env=env)
        return done.exit_code, done.output.strip()

    assert run() == (0, 'environments=["qa", "production"]')
    assert run(REQUESTED="production") == (0, 'environments=["production"]')
    assert run("--requested", "staging") == (0, 'environments=["staging"]')
    code, out = run(REQUESTED="nope")
    assert code == 2 and "unknown environment 'nope'" in out
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "nothing"], cwd=project, check=True)
    assert run() == (0, "environments=[]")
    outputs = project / "github-output"
    assert run(REQUESTED="staging", GITHUB_OUTPUT=str(outputs)) == (0, 'environments=["staging"]')
    assert read_commands_file(outputs) == {"environments": '["staging"]'}
