"""The ``gitops-ml`` command line: thin over the stage modules.

Exit codes: 0 success, 1 a check failed, 2 bad usage or configuration.
Every command prints tables for people and, with ``--json``, one JSON object for scripts.
"""

from __future__ import annotations

import sys

import click

from ..errors import GitopsMLError
from .output import console
from .root import main


def run() -> None:
    """Entry point: map the engine's errors to exit codes and one clear line on stderr."""
    try:
        main.main(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except click.Abort:
        sys.exit(130)
    except GitopsMLError as exc:
        console.err(f"error: {exc}")
        sys.exit(exc.exit_code)


# Each stage's commands register themselves on ``main``.
from . import pipeline  # noqa: E402,F401

__all__ = ["main", "run"]
