"""``gitops-ml new``: a GitOps ML repository from the bundled template."""

from __future__ import annotations

import textwrap
from pathlib import Path

import click

from .. import scaffold
from .output import console, emit
from .root import json_option, main


def _questions_help() -> str:
    """The questions as cookiecutter.json lists them, choices in brackets: help that cannot drift from it."""
    try:
        known = scaffold.questions()
    except Exception:  # noqa: BLE001 - a missing template is reported when `new` runs, not in --help
        return "Questions: see the template's cookiecutter.json."
    shown = [f"{name} ({', '.join(value)})" if isinstance(value, list) else name for name, value in known.items()]
    return "\n".join(textwrap.wrap("Questions: " + ", ".join(shown) + ".", width=100))


NEW_HELP = f"""Create a repository from the template: its questions, answered by KEY=VALUE or interactively.

\b
{_questions_help()}
Example: gitops-ml new --no-input project_name="Fraud Scores" mlops_level=1 task=regression
"""


@main.command("new", help=NEW_HELP)
@click.argument("answers", nargs=-1, metavar="[KEY=VALUE]...")
@click.option("--no-input", is_flag=True, help="Ask nothing: take the defaults for every question not answered.")
@click.option(
    "--output-dir",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Where the project's folder is created.",
)
@json_option
def new_command(answers: tuple[str, ...], no_input: bool, output_dir: Path) -> None:
    given = scaffold.parse_answers(answers)
    result = scaffold.new(given, output_dir, no_input=no_input)
    emit(result.as_dict(), lambda: _print_next_steps(result))


def _print_next_steps(result: scaffold.Scaffold) -> None:
    console.out.print(
        f"wrote {result.path} ({len(result.files)} files, MLOps level {result.level}; "
        f"workflows: {', '.join(result.workflows)})"
    )
    console.out.print(
        f"next: cd {result.path} && make setup && make all   (then see README.md: first push "
        "to first production release, and the secrets and settings to configure)"
    )
