"""The command group and the options every command shares."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
import warnings
from pathlib import Path

import click

from .. import __version__
from ..config import Spec, load_spec
from ..errors import CheckFailed, ConfigError, GitopsMLError
from ..layout import TELEMETRY_OFF
from . import report
from .output import console

# Telemetry off unless a user turns it on: CI logs and laptops alike.
# Progress bars of artifact downloads would flood CI logs.
for _var, _value in TELEMETRY_OFF:
    os.environ.setdefault(_var, _value)
logging.getLogger("mlflow").setLevel(logging.WARNING)
warnings.filterwarnings("ignore", module="mlflow")


class EngineGroup(click.Group):
    """Maps the engine's errors to exit codes (1 a failed check, 2 bad usage) and one line on stderr."""

    def invoke(self, ctx: click.Context):
        # The shape of pip's _run_wrapper: run the command, then hand its result (or the result a
        # failed check carries) to the one reporter, then map errors to exit codes.
        try:
            result = super().invoke(ctx)
        except CheckFailed as exc:
            report.publish(ctx, ctx.invoked_subcommand, exc.result, _loaded_spec(ctx), failed=True)
            console.err(f"error: {exc}")
            ctx.exit(exc.exit_code)
        except GitopsMLError as exc:
            console.err(f"error: {exc}")
            ctx.exit(exc.exit_code)
        report.publish(ctx, ctx.invoked_subcommand, result, _loaded_spec(ctx))
        return result


def _loaded_spec(ctx: click.Context) -> Spec | None:
    """The spec the command read, if it read one (the reporter never reads it again)."""
    return (ctx.obj or {}).get("spec")


@click.group(cls=EngineGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="gitops-ml")
@click.option(
    "--project",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="GITOPS_ML_PROJECT",
    help="Project folder (default: the nearest one with [tool.gitops-ml] in pyproject.toml).",
)
@click.pass_context
def main(ctx: click.Context, project: Path | None) -> None:
    """GitOps for ML: validate, train, evaluate, card, package, serve, promote, deploy, monitor."""
    ctx.obj = {"project": project}


def parse_version(version: str | None) -> int | None:
    """The VERSION argument as the one version type the engine uses, an int (None: the newest)."""
    if version is None:
        return None
    if not version.isdigit():
        raise ConfigError(f"version must be a whole number, got {version!r} (the VERSION argument)")
    return int(version)


def spec_of(ctx: click.Context) -> Spec:
    """The project spec, read once per invocation."""
    root = ctx.find_root().obj
    if "spec" not in root:
        root["spec"] = load_spec(root["project"])
    return root["spec"]


def json_option(command):
    """Add ``--json``: one JSON object on stdout instead of tables."""

    @click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
    @functools.wraps(command)
    def wrapper(*args, as_json: bool, **kwargs):
        context = click.get_current_context()
        context.meta["json"] = as_json
        if not as_json:
            return command(*args, **kwargs)
        # Libraries print to stdout (MLflow's "View run at" lines); keep stdout for the one object.
        context.meta["stdout"] = sys.stdout
        with contextlib.redirect_stdout(sys.stderr):
            return command(*args, **kwargs)

    return wrapper
