"""The inference log: every served row, appended as JSON Lines off the request path; and its reader.

Files are ``predictions-<UTC %Y%m%dT%H%M%S>-<pid>-<n>.jsonl`` under one directory, one object a line::

    {"timestamp": "2026-11-23T14:00:00.123456Z", "model_name": "churn-classifier", "model_version": 3,
     "data_fingerprint": "...", "request_id": "9f1c...", "traffic": "production", "features": {...},
     "prediction": 1, "probability": 0.83}

``request_id`` is the prediction's id (the caller's ``X-Request-ID``, else generated), what labels that
arrive later are joined on; ``features`` holds every contract column of the request, the project's
``id_column`` included. ``traffic`` is ``production`` unless the request said otherwise
(``X-Gitops-ML-Traffic: smoke`` from ``gitops-ml smoke``): the reader keeps production rows only, so
smoke tests and pipeline checks never count as what production was asked. Lines written before
these fields existed read as production rows without an id.

The writer never blocks a prediction: rows wait in a bounded buffer that a background thread drains;
when the buffer is full the rows are dropped and counted. Each drained chunk is written as whole
lines, flushed and fsynced, so a crash loses at most what was still buffered (and at worst leaves one
partial last line, which the reader skips and counts). Files are only ever appended to, never rewritten.

This module needs only the standard library and pandas: the bento ships a copy of it, and the
monitoring stage imports ``read_log`` without loading BentoML.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

try:  # the faster encoder; the log works without it (the monitor imports this module too)
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is a dependency of the engine and of every bento
    _orjson = None

FILE_PATTERN = re.compile(r"^predictions-(\d{8}T\d{6})-(\d+)-(\d+)\.jsonl$")
META_COLUMNS = ("prediction", "probability", "timestamp", "model_version", "request_id", "traffic")
PRODUCTION = "production"  # the traffic every request is unless it is marked (X-Gitops-ML-Traffic)


def utc_timestamp(moment: datetime | None = None) -> str:
    """``2026-11-23T14:00:00.123456Z``: microseconds, always UTC, always the same width."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def local_directory(location: str) -> Path:
    """The directory a location names; the writer appends to local files only (``file://`` included)."""
    if location.startswith("file://"):
        return Path(location.removeprefix("file://"))
    if "://" in location:
        raise ValueError(
            f"inference log {location!r}: the served model appends to a local directory (or file:// URI); "
            "mount the bucket as a volume, or ship the directory's rotated files to it"
        )
    return Path(location)


@dataclass
class _Batch:
    """Rows of one prediction call, as columns, with what every line of it shares."""

    timestamp: str
    names: list[str]
    columns: list[list]
    predictions: list
    probabilities: list
    request_ids: list | None = None
    traffic: str = PRODUCTION

    @property
    def rows(self) -> int:
        return len(self.predictions)


class LogWriter:
    """Append served rows to rotating JSON Lines files from a background thread.

    ``capacity`` bounds the rows waiting to be written; ``rotate_bytes`` and ``rotate_seconds``
    start a new file when the current one is that big or that old. ``on_drop(n)`` and
    ``on_write(n)`` let the service count rows in its metrics.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        model_name: str,
        model_version: int,
        data_fingerprint: str,
        capacity: int = 10_000,
        rotate_bytes: int = 16 * 2**20,
        rotate_seconds: float = 3600.0,
        flush_seconds: float = 0.5,
        on_drop: Callable[[int], None] | None = None,
        on_write: Callable[[int], None] | None = None,
    ) -> None:
        self.directory = local_directory(str(directory))
        self.directory.mkdir(parents=True, exist_ok=True)
        self.capacity = capacity
        self.rotate_bytes = rotate_bytes
        self.rotate_seconds = rotate_seconds
        self.flush_seconds = flush_seconds
        self._on_drop = on_drop
        self._on_write = on_write
        # The prefix every line shares, serialised once.
        self._shared = (
            f'"model_name": {json.dumps(model_name)}, "model_version": {int(model_version)}, '
            f'"data_fingerprint": {json.dumps(data_fingerprint)}'
        )
        self._pending: deque[_Batch] = deque()
        self._pending_rows = 0
        self._condition = threading.Condition()
        self._closing = False
        self.dropped = 0
        self.written = 0
        self.errors = 0
        self._file = None
        self._file_opened = 0.0
        self._file_count = 0
        self.files: list[Path] = []
        self._thread = threading.Thread(target=self._run, name="inference-log-writer", daemon=True)
        self._thread.start()

    # -- request path: never blocks on I/O ---------------------------------------------
    def submit(self, features: list[dict], predictions: list, probabilities: list | None = None, *,
               request_ids: list | None = None, traffic: str = PRODUCTION) -> int:
        """Queue one prediction call's rows (records); returns how many were accepted (the rest are dropped)."""
        names = list(dict.fromkeys(name for row in features for name in row))
        return self.submit_columns({name: [row.get(name) for row in features] for name in names}, predictions,
                                   probabilities, request_ids=request_ids, traffic=traffic)

    def submit_columns(self, columns: dict[str, list], predictions: list, probabilities: list | None = None, *,
                       request_ids: list | None = None, traffic: str = PRODUCTION) -> int:
        """Queue one prediction call's rows, given as feature columns (name -> values in row order).

        The service hands its checked columns over as they are: the lines are built on the writer's
        thread, so the request path makes no per-row objects for the log.
        """
        rows = len(predictions)
        if probabilities is None:
            probabilities = [None] * rows
        with self._condition:
            room = 0 if self._closing else max(0, self.capacity - self._pending_rows)
            accepted = min(room, rows)
            if accepted:
                cut = accepted < rows
                self._pending.append(_Batch(
                    utc_timestamp(), list(columns),
                    [values[:accepted] if cut else values for values in columns.values()],
                    predictions[:accepted] if cut else predictions,
                    probabilities[:accepted] if cut else probabilities,
                    None if request_ids is None else (request_ids[:accepted] if cut else request_ids),
                    traffic))
                self._pending_rows += accepted
                self._condition.notify()
            dropped = rows - accepted
            self.dropped += dropped
        if dropped and self._on_drop is not None:
            self._on_drop(dropped)
        return accepted

    @property
    def pending(self) -> int:
        return self._pending_rows

    # -- background thread -------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._condition:
                if not self._pending and not self._closing:
                    self._condition.wait(timeout=self.flush_seconds)
                batches = list(self._pending)
                self._pending.clear()
                closing = self._closing
            if batches:
                self._write(batches)
                with self._condition:
                    self._pending_rows -= sum(b.rows for b in batches)
            elif self._file is not None and time.monotonic() - self._file_opened >= self.rotate_seconds:
                self._close_file()
            if closing and not self._pending:
                self._close_file()
                return

    def _write(self, batches: list[_Batch]) -> None:
        lines = "".join(self._lines(batch) for batch in batches)
        rows = sum(b.rows for b in batches)
        try:
            handle = self._current_file()
            handle.write(lines)
            handle.flush()
            os.fsync(handle.fileno())
        except OSError:
            # A full or vanished disk must not take predictions down; the rows count as dropped.
            self.errors += 1
            self.dropped += rows
            self._file = None
            if self._on_drop is not None:
                self._on_drop(rows)
            return
        self.written += rows
        if self._on_write is not None:
            self._on_write(rows)

    def _lines(self, batch: _Batch) -> str:
        head = f'{{"timestamp": "{batch.timestamp}", {self._shared}, "request_id": '
        traffic = f', "traffic": {_dumps(batch.traffic)}, "features": '
        names = batch.names
        ids = batch.request_ids if batch.request_ids is not None else [None] * batch.rows
        rows = zip(zip(*batch.columns, strict=True) if names else [()] * batch.rows, batch.predictions,
                   batch.probabilities, ids, strict=True)
        return "".join(
            f'{head}{_dumps(request_id)}{traffic}{_dumps(dict(zip(names, values, strict=True)))}, '
            f'"prediction": {_dumps(prediction)}, "probability": {_dumps(probability)}}}\n'
            for values, prediction, probability, request_id in rows
        )

    def _current_file(self):
        too_big = self._file is not None and self._file.tell() >= self.rotate_bytes
        too_old = self._file is not None and time.monotonic() - self._file_opened >= self.rotate_seconds
        if too_big or too_old:
            self._close_file()
        while self._file is None:
            self._file_count += 1
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
            path = self.directory / f"predictions-{stamp}-{os.getpid()}-{self._file_count}.jsonl"
            try:
                # "x": never append to (or clobber) a file another writer owns; take the next number.
                self._file = open(path, "x", encoding="utf-8")  # noqa: SIM115 - lives across calls
            except FileExistsError:
                continue
            self._file_opened = time.monotonic()
            self.files.append(path)
        return self._file

    def _close_file(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                self.errors += 1
            self._file = None

    # -- shutdown ----------------------------------------------------------------------
    def close(self, timeout: float = 10.0) -> None:
        """Write what is buffered, close the file and stop the thread."""
        with self._condition:
            self._closing = True
            self._condition.notify()
        self._thread.join(timeout)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every accepted row is on disk; False when that took longer than ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._condition:
                if self._pending_rows == 0:
                    return True
                self._condition.notify()
            time.sleep(0.01)
        return False


def _dumps(value) -> str:
    """JSON text of a value; NaN and infinities as null, numpy scalars and datetimes as plain JSON.

    orjson (about ten times the standard library's speed) when installed, as it is in every bento.
    """
    if _orjson is not None:
        return _orjson.dumps(value, default=_plain, option=_orjson.OPT_SERIALIZE_NUMPY).decode()
    return json.dumps(_finite(value), default=_plain)


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    return value


def _plain(value):
    """numpy scalars and NaN as JSON: numbers, strings, null."""
    if value is None:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, int | float | str | bool):
        return value
    return str(value)


# -- reading ---------------------------------------------------------------------------
@dataclass
class LogRead:
    """What ``read_log`` found: the rows as a frame, and how much it read and skipped."""

    frame: pd.DataFrame
    rows: int
    corrupt_lines: int
    files: int
    other_traffic: int = 0  # rows inside the window marked as other traffic (smoke, checks): left out
    other_versions: int = 0  # rows inside the window that another model version answered: left out


def read_log(location: str, since: datetime | None = None, model_version: int | None = None,
             traffic: str | None = PRODUCTION) -> LogRead:
    """Every logged row under ``location`` (a directory or fsspec URI), oldest first.

    ``frame`` has one column per feature plus ``prediction``, ``probability``, ``timestamp``
    (tz-aware UTC), ``model_version``, ``request_id`` and ``traffic``. Only rows of ``traffic``
    (production by default; None: every row) are kept, the others counted. Lines that do not parse
    (a crash's partial last line, a hand edit) are skipped and counted. A missing directory gives an
    empty frame.
    """
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    records: list[dict] = []
    corrupt = other_traffic = other_versions = 0
    paths = _log_files(location)
    for opener in paths:
        with opener() as handle:
            for raw in handle:
                record = _parse_line(raw)
                if record is None:
                    if raw.strip():
                        corrupt += 1
                    continue
                if since is not None and record["timestamp"] < since:
                    continue
                if traffic is not None and record["traffic"] != traffic:
                    other_traffic += 1
                    continue
                if model_version is not None and record["model_version"] != model_version:
                    other_versions += 1
                    continue
                records.append(record)
    frame = _frame(records)
    return LogRead(frame=frame, rows=len(frame), corrupt_lines=corrupt, files=len(paths),
                   other_traffic=other_traffic, other_versions=other_versions)


def _log_files(location: str) -> list[Callable]:
    """Openers of the log's files in name order (their names start with the UTC time they were opened)."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(location)
    if not fs.exists(root) or not fs.isdir(root):
        return []
    names = sorted(path for path in fs.ls(root, detail=False)
                   if FILE_PATTERN.match(path.rstrip("/").rsplit("/", 1)[-1]))
    return [lambda name=name: fs.open(name, "r", encoding="utf-8", errors="replace") for name in names]


def _parse_line(raw: str) -> dict | None:
    """One log line as a flat record, or None when it is not a complete, well-formed object."""
    try:
        document = json.loads(raw)
        features = document["features"]
        if not isinstance(features, dict):
            return None
        timestamp = datetime.fromisoformat(document["timestamp"].replace("Z", "+00:00"))
        if timestamp.tzinfo is None:
            timestamp = timestamp.replace(tzinfo=UTC)
        return {**features, "prediction": document["prediction"], "probability": document.get("probability"),
                "timestamp": timestamp, "model_version": int(document["model_version"]),
                "request_id": document.get("request_id"), "traffic": document.get("traffic") or PRODUCTION}
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _frame(records: list[dict]) -> pd.DataFrame:
    if not records:
        return pd.DataFrame({
            "prediction": pd.Series(dtype=object), "probability": pd.Series(dtype=float),
            "timestamp": pd.Series(dtype="datetime64[ns, UTC]"), "model_version": pd.Series(dtype="int64"),
            "request_id": pd.Series(dtype=object), "traffic": pd.Series(dtype=object),
        })
    frame = pd.DataFrame.from_records(records)
    features = [c for c in frame.columns if c not in META_COLUMNS]
    frame = frame[[*features, *META_COLUMNS]]
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    frame["probability"] = pd.to_numeric(frame["probability"], errors="coerce")
    frame["model_version"] = frame["model_version"].astype("int64")
    return frame.sort_values("timestamp", kind="stable").reset_index(drop=True)
