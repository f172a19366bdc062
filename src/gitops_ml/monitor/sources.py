"""Where monitored rows come from: the inference log or a CSV/Parquet file, sampled and checked.

Files are read in chunks, the inference log one file or object at a time, and both are sampled
with a seeded bottom-k draw, so memory stays bounded by ``drift.max_rows`` whatever the size.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pandera.pandas as pa

from ..config import DURATION, Spec
from ..data import MAX_LISTED_VALUES, iter_table, validate_frame
from ..errors import CheckFailed, ConfigError
from ..layout import TIMESTAMP

CHUNK_ROWS = 100_000  # rows held at once while streaming a file
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str, field_name: str = "--window") -> timedelta:
    """``30m``, ``12h``, ``7d`` or ``2w`` as a timedelta."""
    match = DURATION.fullmatch(text or "")
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(f"{field_name} {text!r}: expected a positive duration such as 30m, 12h, 7d or 2w")
    return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})


@dataclass
class Rows:
    """Rows read from one source, after sampling and the contract check."""

    frame: pd.DataFrame
    source: str
    kind: str  # "log" or "file"
    rows_read: int  # rows in the source (inside the window)
    sampled: bool = False
    corrupt_lines: int = 0
    invalid_rows: int = 0
    invalid_checks: list[str] = field(default_factory=list)
    window: str | None = None
    since: datetime | None = None
    files: int = 1
    other_traffic: int = 0  # log rows inside the window marked as other traffic (smoke, checks): left out
    other_versions: int = 0  # log rows inside the window another model version answered: left out
    corrupt_objects: int = 0  # inference-log objects skipped whole

    @property
    def rows_used(self) -> int:
        return len(self.frame)

    @property
    def invalid_share(self) -> float:
        checked = self.rows_used + self.invalid_rows
        return self.invalid_rows / checked if checked else 0.0

    def as_dict(self) -> dict:
        return {
            "source": self.source, "kind": self.kind, "rows_read": self.rows_read, "rows_used": self.rows_used,
            "sampled": self.sampled, "corrupt_lines": self.corrupt_lines, "invalid_rows": self.invalid_rows,
            "invalid_checks": self.invalid_checks, "window": self.window,
            "since": self.since.isoformat() if self.since else None, "files": self.files,
            "other_traffic": self.other_traffic, "other_versions": self.other_versions,
            "corrupt_objects": self.corrupt_objects,
        }


# -- sampling ------------------------------------------------------------------------------------
def bottom_k(chunks: Iterator[pd.DataFrame], cap: int, seed: int) -> tuple[pd.DataFrame, int]:
    """A uniform sample of at most ``cap`` rows from a stream of chunks, and the rows seen.

    Every row gets a seeded random key and the ``cap`` smallest keys are kept: the same file
    and seed give the same sample, and only ``cap`` rows plus one chunk are ever held.
    """
    rng = np.random.default_rng(seed)
    kept: pd.DataFrame | None = None
    seen = 0
    for chunk in chunks:
        chunk = chunk.reset_index(drop=True)
        chunk["__order"] = np.arange(seen, seen + len(chunk))
        chunk["__key"] = rng.random(len(chunk))
        seen += len(chunk)
        kept = chunk if kept is None else pd.concat([kept, chunk], ignore_index=True)
        if len(kept) > cap:
            keep = np.argpartition(kept["__key"].to_numpy(), cap - 1)[:cap]
            kept = kept.iloc[keep]
    if kept is None:
        return pd.DataFrame(), 0
    kept = kept.sort_values("__order").drop(columns=["__order", "__key"]).reset_index(drop=True)
    return kept, seen


def sample(frame: pd.DataFrame, cap: int, seed: int) -> pd.DataFrame:
    """At most ``cap`` rows of an in-memory frame, seeded, in their original order."""
    if len(frame) <= cap:
        return frame.reset_index(drop=True)
    return frame.sample(n=cap, random_state=seed).sort_index().reset_index(drop=True)


# -- files -----------------------------------------------------------------------------------------
def _chunks(uri: str, since: datetime | None, time_columns: tuple[str, ...]) -> Iterator[pd.DataFrame]:
    """A CSV or Parquet file (path or fsspec URI) in chunks, rows older than ``since`` left out."""
    for chunk in iter_table(uri, CHUNK_ROWS):
        yield _inside_window(chunk, since, time_columns)


def _inside_window(chunk: pd.DataFrame, since: datetime | None, time_columns: tuple[str, ...]) -> pd.DataFrame:
    if since is None:
        return chunk
    for column in time_columns:
        if column in chunk.columns:
            stamps = pd.to_datetime(chunk[column], utc=True, errors="coerce")
            return chunk[stamps >= pd.Timestamp(since)]
    raise ConfigError(f"--window needs a time column ({' or '.join(time_columns)}) in the current data")


def read_file(spec: Spec, uri: str, window: str | None) -> Rows:
    """Rows of a CSV or Parquet file; ``window`` (explicit only) keeps rows newer than now minus it."""
    since = datetime.now(UTC) - parse_duration(window) if window else None
    columns = (TIMESTAMP, spec.time_column) if spec.time_column else (TIMESTAMP,)
    frame, seen = bottom_k(_chunks(uri, since, columns), spec.drift.max_rows, spec.seed)
    return Rows(frame=frame, source=uri, kind="file", rows_read=seen, sampled=seen > len(frame),
                window=window, since=since)


def read_inference_log(spec: Spec, model_version: int, window: str | None) -> Rows:
    """What the environment's model was asked over the window, from the serving inference log.

    Streamed one file or object at a time into the same seeded bottom-k draw as files: memory holds
    ``drift.max_rows`` rows plus one chunk, however many rows the window holds.
    """
    from ..serve.inference_log import LogLocationError, LogStream, log_frame

    # Name what the user wrote: the --window option, or the spec's drift.window when it was not given.
    label = "--window" if window else "drift.window"
    window = window or spec.drift.window
    refuse_when_logging_off(spec, "drift has no traffic to compare; pass --current FILE")
    since = datetime.now(UTC) - parse_duration(window, label)
    location = spec.resolve(spec.serving.inference_log)
    try:
        stream = LogStream(location, since=since, model_version=model_version)
        frame, seen = bottom_k(regroup(stream, CHUNK_ROWS), spec.drift.max_rows, spec.seed)
    except LogLocationError as exc:  # a missing driver, refused credentials, a missing bucket: exit 1
        raise CheckFailed(f"[tool.gitops-ml.serving] inference_log: {exc}") from None
    frame = log_frame([frame] if seen else [])
    log = stream.result(frame)
    return Rows(frame=log.frame, source=location, kind="log", rows_read=log.rows, sampled=log.rows > len(frame),
                corrupt_lines=log.corrupt_lines, window=window, since=since, files=log.files,
                other_traffic=log.other_traffic, other_versions=log.other_versions,
                corrupt_objects=log.corrupt_objects)


def regroup(parts: Iterable[pd.DataFrame], rows: int) -> Iterator[pd.DataFrame]:
    """Small frames (one a log object) joined into chunks of at least ``rows`` rows (the last one
    smaller), so the sampler concatenates once a chunk instead of once an object."""
    held: list[pd.DataFrame] = []
    count = 0
    for part in parts:
        held.append(part)
        count += len(part)
        if count >= rows:
            yield pd.concat(held, ignore_index=True) if len(held) > 1 else held[0]
            held, count = [], 0
    if held:
        yield pd.concat(held, ignore_index=True) if len(held) > 1 else held[0]


def refuse_when_logging_off(spec: Spec, what_now: str) -> None:
    """A log that is switched off cannot be read: say so (exit 2) instead of reporting an empty window."""
    if spec.serving.logging_off:
        raise ConfigError(f'{spec.pyproject}: [tool.gitops-ml.serving] inference_log is "off": the served model '
                          f"logs nothing, so {what_now}, or set inference_log to where the service logs")


# -- the contract ---------------------------------------------------------------------------------
def check_rows(rows: Rows, schema: pa.DataFrameSchema, target: str, labelled: bool) -> Rows:
    """Keep the rows that meet the contract; count and name the ones that do not.

    A missing feature column is not a row problem but a broken contract: nothing can be
    compared, so it stops the run (exit 1) naming the columns.
    """
    if rows.frame.empty:
        return rows
    wanted = [name for name in schema.columns if labelled or name != target]
    missing = [name for name in wanted if name not in rows.frame.columns]
    if missing:
        raise CheckFailed(f"{rows.source}: missing column(s) {', '.join(missing)} that the data contract requires")
    extras = {c: rows.frame[c] for c in ("prediction", "probability") if c in rows.frame.columns}
    part = schema if labelled else schema.remove_columns([target])
    checked, report = validate_frame(rows.frame[wanted], part, rows.source)
    if report.passed:
        rows.frame = checked.assign(**{k: v.loc[checked.index] for k, v in extras.items()}).reset_index(drop=True)
        return rows
    bad_rows = {row for failure in report.failures for row in failure.rows}
    unlocated = [f for f in report.failures if not f.rows]
    if unlocated:  # a failure pandera cannot pin to rows, such as a column of the wrong type
        names = "; ".join(f"{f.column}: {f.check}" for f in unlocated)
        raise CheckFailed(f"{rows.source}: the data breaks the contract as a whole: {names}")
    rows.invalid_rows = len(bad_rows)
    rows.invalid_checks = [f"{f.column}: {f.check} ({f.count} rows, e.g. {', '.join(f.values[:MAX_LISTED_VALUES])})"
                           for f in report.failures]
    good = rows.frame.drop(index=sorted(bad_rows))
    rechecked, again = validate_frame(good[wanted], part, rows.source)
    if not again.passed:  # cannot happen unless pandera reported a row twice under another index
        raise CheckFailed(f"{rows.source}: rows still break the contract after removing the failing ones")
    rows.frame = rechecked.assign(**{k: v.loc[rechecked.index] for k, v in extras.items()}).reset_index(drop=True)
    return rows
