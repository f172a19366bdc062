"""Printing: rich tables for people, one JSON object for scripts, errors on stderr."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table


class _Consoles:
    def __init__(self) -> None:
        self.out = Console(highlight=False, soft_wrap=True)
        self.error = Console(stderr=True, highlight=False, soft_wrap=True)

    def err(self, message: str) -> None:
        self.error.print(message, markup=False)

    def info(self, message: str) -> None:
        """Progress for people; silent under --json so stdout stays one object."""
        if not wants_json():
            self.error.print(message, markup=False)


console = _Consoles()


def wants_json() -> bool:
    context = click.get_current_context(silent=True)
    return bool(context and context.meta.get("json"))


def _plain(value):
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def emit(payload: dict, render: Callable[[], None]) -> None:
    """Print ``payload`` as JSON under --json, else call ``render`` to print tables."""
    if wants_json():
        stdout = click.get_current_context().meta.get("stdout", sys.stdout)
        stdout.write(json.dumps(_plain(payload), indent=2, sort_keys=False, default=str) + "\n")
    else:
        render()


def table(title: str, headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    grid = Table(title=title, title_justify="left", show_lines=False)
    for header in headers:
        grid.add_column(header, overflow="fold")
    for row in rows:
        grid.add_row(*(fmt(v) for v in row))
    console.out.print(grid)


def fmt(value: object) -> str:
    if isinstance(value, bool):
        return "pass" if value else "FAIL"
    if isinstance(value, float):
        return f"{value:.4f}"
    return "" if value is None else str(value)
