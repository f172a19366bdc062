"""``gitops-ml new``: a GitOps ML repository from the bundled template."""

from __future__ import annotations

from pathlib import Path

import click

from .. import scaffold
from .output import console, emit
from .root import json_option, main


@main.command("new")
@click.argument("answers", nargs=-1, metavar="[KEY=VALUE]...")
@click.option("--no-input", is_flag=True, help="Ask nothing: take the defaults for every question not answered.")
@click.option("--output-dir", "-o", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Where the project's folder is created.")
@json_option
def new_command(answers: tuple[str, ...], no_input: bool, output_dir: Path) -> None:
    """Create a repository from the template: its questions, answered by KEY=VALUE or interactively.

    \b
    Questions: project_name, project_slug, package_name, description, author_name, author_email,
    github_owner, python_version (3.12, 3.11), mlops_level (2, 1, 0), task (classification,
    regression), mlflow_tracking_uri, container_registry, drift_schedule, license, engine_source.
    Example: gitops-ml new --no-input project_name="Fraud Scores" mlops_level=1 task=regression
    """
    given = scaffold.parse_answers(answers)
    result = scaffold.new(given, output_dir, no_input=no_input)
    emit(result.as_dict(), lambda: _print_next_steps(result))


def _print_next_steps(result: scaffold.Scaffold) -> None:
    console.out.print(f"wrote {result.path} ({len(result.files)} files, MLOps level {result.level}; "
                      f"workflows: {', '.join(result.workflows)})")
    console.out.print(f"next: cd {result.path} && make setup && make all   (then see README.md: first push "
                      "to first production release, and the secrets and settings to configure)")
