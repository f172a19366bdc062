"""Bakes of the template and the git repositories they become: one definition for every test module.

``config_generator`` builds the bake matrix from cookiecutter.json, as cookiecutter-data-science's
``tests/conftest.py`` does: a new choice in the template reaches the matrix without a test edit.
"""

from __future__ import annotations

import json
import subprocess
from itertools import cycle, product
from pathlib import Path

from cookiecutter.main import cookiecutter

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template"

# Choice questions that change which files a bake has or what they hold: every combination is baked.
PRODUCT = ("mlops_level", "task")
# Choice questions that change one value each: cycled through the combinations, so every option is
# baked at least once without multiplying the bakes.
CYCLED = ("python_version", "license", "gitops_controller", "release_strategy")


def template_facts() -> dict:
    """cookiecutter.json as the template ships it."""
    return json.loads((TEMPLATE / "cookiecutter.json").read_text(encoding="utf-8"))


def config_generator() -> list[dict[str, str]]:
    """The bake matrix: every combination of ``PRODUCT``'s options, ``CYCLED``'s options spread over them."""
    facts = template_facts()
    cycles = {name: cycle(facts[name]) for name in CYCLED}
    return [
        {**dict(zip(PRODUCT, combination, strict=True)), **{name: next(values) for name, values in cycles.items()}}
        for combination in product(*(facts[name] for name in PRODUCT))
    ]


def config_id(config: dict[str, str]) -> str:
    return "-".join(config[name] for name in (*PRODUCT, *CYCLED))


def bake(output_dir: Path, **answers: str) -> Path:
    """Render the template with ``answers`` (defaults for the rest), as ``cookiecutter --no-input`` would."""
    return Path(cookiecutter(str(TEMPLATE), no_input=True, extra_context=answers, output_dir=str(output_dir)))


def files_of(project: Path) -> set[str]:
    return {p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file()}


def git(cwd: Path, *args: str) -> str:
    """Run git with a throwaway identity; a failure fails the test with git's own words."""
    done = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout


def repository(project: Path) -> Path:
    """The bake as a pushed repository: main on a bare origin beside it, as GitHub would hold it."""
    origin = project.parent / f"{project.name}-origin.git"
    git(project.parent, "init", "-q", "--bare", "-b", "main", str(origin))
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "Start from gitops-ml")
    git(project, "remote", "add", "origin", str(origin))
    git(project, "push", "-q", "-u", "origin", "main")
    return project
