"""GitHub Actions integration as files and text: step summaries, annotations, outputs.

The engine makes no HTTP calls to GitHub; the workflow hands these to GitHub.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Sequence


def in_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def _append(variable: str, text: str) -> bool:
    path = os.environ.get(variable)
    if not path:
        return False
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(text if text.endswith("\n") else text + "\n")
    return True


def write_summary(markdown: str) -> bool:
    """Append Markdown to the job's step summary; False when not in a job."""
    return _append("GITHUB_STEP_SUMMARY", markdown)


def set_output(name: str, value: str) -> bool:
    """Set a step output, multi-line safe (a random delimiter no value contains)."""
    delimiter = f"ghadelim_{uuid.uuid4().hex}"
    return _append("GITHUB_OUTPUT", f"{name}<<{delimiter}\n{value}\n{delimiter}\n")


def _escape(text: str, property_value: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if property_value else text


def annotation(
    level: str, message: str, file: str | None = None, title: str | None = None, line: int | None = None
) -> str:
    """A workflow command such as ``::error file=data.csv,title=...::message``."""
    props = [
        f"{key}={_escape(str(value), True)}"
        for key, value in (("file", file), ("line", line), ("title", title))
        if value is not None
    ]
    return f"::{level} {','.join(props)}::{_escape(message)}" if props else f"::{level}::{_escape(message)}"


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
