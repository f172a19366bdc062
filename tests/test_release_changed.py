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


def test_a_changed_canary_deploys_its_environment(project: Path) -> None:
    spec = load_spec(project)
    paths = ["environments/production/canary.yaml", "environments/production/canary/kustomization.yaml",
             "environments/staging/canary.md"]  # fmt: skip
    assert release.changed_environments(spec, "", paths) == ["production"]


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
        return done.exit_code, done.output.strip().splitlines()[0]

    assert run() == (0, 'environments=["qa", "production"]')
    assert run(REQUESTED="production") == (0, 'environments=["production"]')
    assert run("--requested", "staging") == (0, 'environments=["staging"]')
    code, out = run(REQUESTED="nope")
    assert code == 2 and "unknown environment 'nope'" in out
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "nothing"], cwd=project, check=True)
    assert run() == (0, "environments=[]")
    outputs = project / "github-output"
    assert run(REQUESTED="staging", GITHUB_OUTPUT=str(outputs)) == (0, 'environments=["staging"]')
    # staging has no manifest: a manual deploy of it only removes the alias
    written = read_commands_file(outputs)
    # and where the images are, for the registry login (the example's image repository is on ghcr.io)
    assert written == {"environments": '["staging"]', "removed": '["staging"]', "registry": "ghcr.io"}


# -- what deploy.yml acts on: the whole push, github.event.before to after --------------------------------
def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=cwd,
                          capture_output=True, text=True, check=True)  # fmt: skip
    return done.stdout.strip()


def _release(clone: Path, env: str, text: str = "version: 1\n", message: str = "") -> str:
    path = clone / "environments" / env / "release.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    _git(clone, "add", "-A")
    _git(clone, "commit", "-qm", message or f"release {env}")
    return _git(clone, "rev-parse", "HEAD")


@pytest.fixture
def pushed(project: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A developer's clone that pushes to a bare origin, and the runner's checkout of it (full history)."""
    origin = tmp_path / "origin.git"
    _git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    _git(project, "init", "-q", "-b", "main")
    _git(project, "remote", "add", "origin", str(origin))
    return project, origin


def _changed(origin: Path, tmp_path: Path, before: str, after: str) -> tuple[int, dict[str, str], str]:
    """changed-environments as the Deploy job runs it: a fresh checkout of the push, BEFORE/AFTER set."""
    runner = tmp_path / f"runner-{after[:8]}-{before[:8]}"
    if not runner.exists():
        _git(tmp_path, "clone", "-q", str(origin), str(runner))  # fetch-depth: 0
        _git(runner, "checkout", "-q", after)
    outputs = tmp_path / "github-output"
    outputs.write_text("")
    done = CliRunner().invoke(main, ["--project", str(runner), "changed-environments"],
                              env={"BEFORE": before, "AFTER": after, "GITHUB_OUTPUT": str(outputs)})  # fmt: skip
    written = read_commands_file(outputs) if done.exit_code == 0 else {}
    assert done.exit_code != 0 or written.pop("registry"), "no registry output for the login"
    return done.exit_code, written, done.output


def test_the_first_push_of_the_branch_counts_every_manifest(pushed, tmp_path: Path) -> None:
    clone, origin = pushed
    _git(clone, "add", "-A")
    _git(clone, "commit", "-qm", "start")
    after = _release(clone, "staging")
    _git(clone, "push", "-q", "origin", "main")
    code, outputs, said = _changed(origin, tmp_path, "0" * 40, after)
    assert code == 0, said
    assert outputs == {"environments": '["staging"]', "removed": "[]"}


def test_several_commits_in_one_push_are_all_counted(pushed, tmp_path: Path) -> None:
    clone, origin = pushed
    _git(clone, "add", "-A")
    _git(clone, "commit", "-qm", "start")
    _git(clone, "push", "-q", "origin", "main")
    before = _git(clone, "rev-parse", "HEAD")
    _release(clone, "production", message="release production")
    _release(clone, "qa", message="release qa")
    after = _git(clone, "commit", "-q", "--allow-empty", "-m", "docs") or _git(clone, "rev-parse", "HEAD")
    _git(clone, "push", "-q", "origin", "main")
    code, outputs, said = _changed(origin, tmp_path, before, after)
    assert code == 0, said
    # HEAD^..HEAD alone saw only the empty last commit and deployed nothing, green
    assert outputs == {"environments": '["qa", "production"]', "removed": "[]"}


def test_a_removed_manifest_is_listed_as_removed(pushed, tmp_path: Path) -> None:
    clone, origin = pushed
    _git(clone, "add", "-A")
    _git(clone, "commit", "-qm", "start")
    _release(clone, "staging")
    _release(clone, "qa")
    _git(clone, "push", "-q", "origin", "main")
    before = _git(clone, "rev-parse", "HEAD")
    _git(clone, "revert", "--no-edit", "HEAD~1")  # the revert of staging's first release
    _release(clone, "qa", "version: 2\n")
    after = _git(clone, "rev-parse", "HEAD")
    _git(clone, "push", "-q", "origin", "main")
    code, outputs, said = _changed(origin, tmp_path, before, after)
    assert code == 0, said
    assert outputs == {"environments": '["qa", "staging"]', "removed": '["staging"]'}


def test_a_previous_commit_the_clone_lacks_fails_loudly(pushed, tmp_path: Path) -> None:
    clone, origin = pushed
    _git(clone, "add", "-A")
    _git(clone, "commit", "-qm", "start")
    after = _release(clone, "staging")
    _git(clone, "push", "-q", "origin", "main")
    code, outputs, said = _changed(origin, tmp_path, "1234567" + "0" * 33, after)
    assert code == 1 and outputs == {}
    assert "previous commit 1234567" in said and "fetch-depth: 0" in said
