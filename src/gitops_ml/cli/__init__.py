"""The ``gitops-ml`` command line: thin over the stage modules.

Exit codes: 0 success, 1 a check failed, 2 bad usage or configuration.
Every command prints tables for people and, with ``--json``, one JSON object for scripts.
"""

from __future__ import annotations

# Each stage's commands register themselves on ``main`` when their module is imported.
from . import monitor, pipeline, release, serving, template  # noqa: F401
from .root import main


def run() -> None:
    """Console-script entry point."""
    main(prog_name="gitops-ml")


__all__ = ["main", "run"]
