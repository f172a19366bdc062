"""The inference log: every served row, as JSON Lines, written off the request path; and its reader.

The log lives at ``serving.inference_log``: a local directory (or ``file://`` URI), or any fsspec
location (``s3://``, ``gs://``, ``az://``, ``memory://``). One JSON object a line::

    {"timestamp": "2026-11-23T14:00:00.123456Z", "model_name": "churn-classifier", "model_version": 3,
     "data_fingerprint": "...", "request_id": "9f1c...", "traffic": "production", "features": {...},
     "prediction": 1, "probability": 0.83}

``request_id`` is the prediction's id (the caller's ``X-Request-ID``, else generated), what labels that
arrive later are joined on; ``features`` holds every contract column of the request, the project's
``id_column`` included. ``traffic`` is ``production`` unless the request said otherwise
(``X-Gitops-ML-Traffic: smoke`` from ``gitops-ml smoke``): the reader keeps production rows only, so
smoke tests and pipeline checks never count as what production was asked. Lines written before
these fields existed read as production rows without an id.

``inference_log = "off"`` (``OFF``): the service makes no writer at all and logs nothing.

The writer never blocks a prediction: rows wait in a bounded buffer that background threads drain;
rows are dropped (and counted, and logged with the reason) only when that buffer is full.

- **A local directory** gets files named ``predictions-<UTC %Y%m%dT%H%M%S>-<pid>-<n>.jsonl``, only ever
  appended to: each drained chunk is written as whole lines, flushed and fsynced, so a crash loses at
  most what was still buffered (and at worst leaves one partial last line, which the reader skips).
- **An object store** does not append, so rows are staged in memory and each rotated file is uploaded
  as one whole object, named ``dt=<UTC day>/predictions-<first row>-<last row>-<host>-<pid>-<uuid>-<n>.jsonl``:
  unique to the process, and carrying the times of its first and last rows, so that a reader filters
  a window by listing names, without downloading the rest. An upload that fails is retried with
  backoff (the same name: a retry never duplicates rows); rows waiting for upload count against the
  buffer, so a storage outage ends in counted drops, never in unbounded memory.

Rotation by size (``rotate_bytes``), by age (``rotate_seconds``, from the oldest row of the file)
and, for objects, at half the buffer's rows.

This module needs only the standard library, pandas and fsspec: the bento ships a copy of it, and
the monitoring stage imports ``read_log`` without loading BentoML.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

try:  # the faster encoder; the log works without it (the monitor imports this module too)
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is a dependency of the engine and of every bento
    _orjson = None

logger = logging.getLogger("gitops_ml.inference_log")

FILE_PATTERN = re.compile(r"^predictions-(\d{8}T\d{6})-(\d+)-(\d+)\.jsonl$")
OBJECT_PATTERN = re.compile(
    r"^predictions-(\d{8}T\d{6})-(\d{8}T\d{6})-([A-Za-z0-9.-]+)-(\d+)-([0-9a-f]{8})-(\d+)\.parquet$")
PARTITION_PATTERN = re.compile(r"^dt=(\d{4}-\d{2}-\d{2})$")
NAME_TIME = "%Y%m%dT%H%M%S"
META_COLUMNS = ("prediction", "probability", "timestamp", "model_version", "request_id", "traffic")
OFF = "off"  # inference_log = "off" (config.LOG_OFF): the service logs nothing; spelt here for the bento
PRODUCTION = "production"  # the traffic every request is unless it is marked (X-Gitops-ML-Traffic)
LOCAL_PROTOCOLS = ("file", "local")
# fsspec protocol -> (the driver package, the engine's extra that brings it)
DRIVERS = {
    "s3": ("s3fs", "s3"), "s3a": ("s3fs", "s3"),
    "gs": ("gcsfs", "gcs"), "gcs": ("gcsfs", "gcs"),
    "az": ("adlfs", "azure"), "abfs": ("adlfs", "azure"), "abfss": ("adlfs", "azure"), "adl": ("adlfs", "azure"),
}
MAX_BACKOFF = 30.0  # seconds between upload attempts, at most


class LogLocationError(ValueError):
    """The log's location cannot be used: no driver for it, or the storage refuses it. Names the location."""


class DriverMissing(LogLocationError):
    """No fsspec driver for the location's protocol is installed."""


def utc_timestamp(moment: datetime | None = None) -> str:
    """``2026-11-23T14:00:00.123456Z``: microseconds, always UTC, always the same width."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def protocol_of(location: str) -> str:
    """``s3`` of ``s3://bucket/x``; ``file`` of a plain path."""
    return location.split("://", 1)[0].lower() if "://" in location else "file"


def is_local(location: str) -> bool:
    return protocol_of(location) in LOCAL_PROTOCOLS


def local_directory(location: str) -> Path:
    """The directory a local location names (a path or a ``file://`` URI)."""
    if not is_local(location):
        raise ValueError(f"inference log {location!r} is not a local directory")
    return Path(location.split("://", 1)[1] if "://" in location else location)


def missing_driver_message(location: str) -> str | None:
    """What to install for ``location``, when its fsspec driver is missing; None when it is there."""
    import importlib.util

    protocol = protocol_of(location)
    if protocol in DRIVERS:
        package, extra = DRIVERS[protocol]
        if importlib.util.find_spec(package) is None:
            return (f"inference log {location}: the {protocol}:// driver ({package}) is not installed; "
                    f"pip install 'gitops-ml[{extra}]' (in a bento or image: pip install {package})")
    return None


def filesystem(location: str):
    """``(fs, root)`` of a location, or ``DriverMissing`` naming the extra to install (never an ImportError)."""
    import fsspec

    message = missing_driver_message(location)
    if message:
        raise DriverMissing(message)
    try:
        return fsspec.core.url_to_fs(location)
    except ImportError as exc:  # a protocol the table does not know, whose driver is missing
        raise DriverMissing(f"inference log {location}: no fsspec driver for {protocol_of(location)}:// "
                            f"is installed ({exc})") from None
    except ValueError as exc:
        raise LogLocationError(f"inference log {location}: {exc}") from None


def _describe_error(exc: BaseException) -> str:
    """One line for a storage failure: the exception's type and its first line."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__


def _host() -> str:
    name = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())[:40].strip(".-")
    return name or "host"


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


@dataclass
class _Object:
    """A sealed file waiting for upload: its name, its bytes and how many rows it holds."""

    path: str
    data: bytes
    rows: int
    attempts: int = 0


class LogWriter:
    """Write served rows to rotating JSON Lines files (a directory) or whole objects (an object store).

    ``capacity`` bounds the rows not yet stored (queued, staged and waiting for upload);
    ``rotate_bytes`` and ``rotate_seconds`` start a new file when the current one is that big or
    its oldest row that old. ``on_drop(rows, reason)``, ``on_write(rows)`` and ``on_upload_error(reason)``
    let the service count them in its metrics.
    """

    def __init__(
        self,
        location: str | Path,
        *,
        model_name: str,
        model_version: int,
        data_fingerprint: str,
        capacity: int = 10_000,
        rotate_bytes: int = 16 * 2**20,
        rotate_seconds: float = 60.0,
        flush_seconds: float = 0.5,
        on_drop: Callable[[int, str], None] | None = None,
        on_write: Callable[[int], None] | None = None,
        on_upload_error: Callable[[str], None] | None = None,
    ) -> None:
        location = str(location)
        self.local = is_local(location)
        if self.local:
            self.directory: Path | None = local_directory(location)
            self.directory.mkdir(parents=True, exist_ok=True)
            self.location = str(self.directory)
            self.fs, self.root = None, ""
        else:
            self.directory = None
            self.fs, root = filesystem(location)  # DriverMissing: fail at start, it never fixes itself
            self.root = root.rstrip("/")
            self.location = location.rstrip("/")
        self.capacity = capacity
        self.rotate_bytes = rotate_bytes
        self.rotate_seconds = rotate_seconds
        self.flush_seconds = flush_seconds
        self._on_drop = on_drop
        self._on_write = on_write
        self._on_upload_error = on_upload_error
        self._model_name, self._model_version, self._fingerprint = model_name, int(model_version), data_fingerprint
        # The prefix every line shares, serialised once.
        self._shared = (
            f'"model_name": {json.dumps(model_name)}, "model_version": {int(model_version)}, '
            f'"data_fingerprint": {json.dumps(data_fingerprint)}'
        )
        self._pending: deque[_Batch] = deque()
        self._pending_rows = 0  # accepted rows not yet stored
        self._condition = threading.Condition()
        self._closing = False
        self.dropped = 0
        self.written = 0
        self.errors = 0  # failed writes or uploads
        self.drops_by_reason: dict[str, int] = {}
        self._last_drop_log = 0.0
        self._file = None
        self._file_opened = 0.0
        self._file_count = 0
        self.files: list[Path] = []  # local files created
        self.objects: list[str] = []  # objects uploaded
        # Object stores: the staged file and the sealed ones waiting for the uploader.
        self._name = f"{_host()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._staged: list[_Batch] = []
        self._staged_bytes = 0  # estimated: rows times the bytes a row took in the last object
        self._row_bytes = 64.0
        self._staged_rows = 0
        self._staged_first: datetime | None = None
        self._staged_last: datetime | None = None
        self._staged_since = 0.0
        self._uploads: deque[_Object] = deque()
        self._upload_condition = threading.Condition()
        self._uploading = 0  # rows of the object being uploaded now
        self._writer_done = False
        self._abandoned = False  # close() timed out: what is still unstored was counted as lost
        self._seal_now = False  # flush(): seal the staged file without waiting for its rotation
        self._thread = threading.Thread(target=self._run, name="inference-log-writer", daemon=True)
        self._thread.start()
        self._uploader = None
        if not self.local:
            self._uploader = threading.Thread(target=self._upload_loop, name="inference-log-uploader", daemon=True)
            self._uploader.start()

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
        if dropped:
            self._drop(dropped, "closing" if self._closing else "buffer_full")
        return accepted

    @property
    def pending(self) -> int:
        return self._pending_rows

    def _drop(self, rows: int, reason: str, detail: str = "") -> None:
        """Count lost rows, and say why (a full buffer at most once every 10 s, not once a request)."""
        with self._condition:
            self.dropped += rows
            self.drops_by_reason[reason] = self.drops_by_reason.get(reason, 0) + rows
            now = time.monotonic()
            quiet = reason == "buffer_full" and now - self._last_drop_log < 10
            if not quiet and reason == "buffer_full":
                self._last_drop_log = now
        if not quiet:
            logger.warning("inference log %s: dropped %d row(s): %s%s (%d dropped so far)", self.location, rows,
                           reason, f" ({detail})" if detail else "", self.dropped)
        if self._on_drop is not None:
            self._on_drop(rows, reason)

    def _release(self, rows: int) -> None:
        with self._condition:
            self._pending_rows -= rows
            self._condition.notify_all()

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
                if self.local:
                    self._write(batches)
                    self._release(sum(b.rows for b in batches))
                else:
                    self._stage(batches)
            elif self.local and self._file is not None and time.monotonic() - self._file_opened >= self.rotate_seconds:
                self._close_file()
            elif not self.local and self._staged_rows and (
                    self._seal_now or time.monotonic() - self._staged_since >= self.rotate_seconds):
                self._seal()
            if self._seal_now and not batches:
                self._seal_now = False
            if closing and not self._pending:
                if self.local:
                    self._close_file()
                else:
                    self._seal()
                    with self._upload_condition:
                        self._writer_done = True
                        self._upload_condition.notify_all()
                return

    def _write(self, batches: list[_Batch]) -> None:
        lines = "".join(self._lines(batch) for batch in batches)
        rows = sum(b.rows for b in batches)
        try:
            handle = self._current_file()
            handle.write(lines)
            handle.flush()
            os.fsync(handle.fileno())
        except OSError as exc:
            # A full or vanished disk must not take predictions down; the rows count as dropped.
            self.errors += 1
            self._file = None
            self._drop(rows, "write_failed", _describe_error(exc))
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
            stamp = datetime.now(UTC).strftime(NAME_TIME)
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

    # -- object stores: stage, seal, upload ------------------------------------------------
    def _stage(self, batches: list[_Batch]) -> None:
        for batch in batches:
            if self._staged_rows and time.monotonic() - self._staged_since >= self.rotate_seconds:
                self._seal()
            moment = _parse_stamp(batch.timestamp)
            if not self._staged_rows:
                self._staged_since = time.monotonic()
                self._staged_first = moment
            self._staged.append(batch)
            self._staged_rows += batch.rows
            self._staged_bytes = int(self._staged_rows * self._row_bytes)
            self._staged_last = moment
            if self._staged_bytes >= self.rotate_bytes or self._staged_rows >= max(1, self.capacity // 2):
                self._seal()

    def _seal(self) -> None:
        """Close the staged file: it becomes one object, queued for the uploader."""
        if not self._staged_rows:
            return
        self._file_count += 1
        first, last = self._staged_first, self._staged_last
        name = (f"predictions-{first.strftime(NAME_TIME)}-{last.strftime(NAME_TIME)}-{self._name}-"
                f"{self._file_count}.parquet")
        path = f"{self.root}/dt={first.strftime('%Y-%m-%d')}/{name}"
        try:
            data = self._parquet(self._staged)
        except Exception as exc:  # values Arrow cannot type: lose these rows, say why, keep serving
            rows = self._staged_rows
            self._staged, self._staged_bytes, self._staged_rows = [], 0, 0
            self._release(rows)
            self._drop(rows, "encode_failed", _describe_error(exc))
            return
        self._row_bytes = max(1.0, len(data) / self._staged_rows)
        sealed = _Object(path, data, self._staged_rows)
        self._staged, self._staged_bytes, self._staged_rows = [], 0, 0
        with self._upload_condition:
            self._uploads.append(sealed)
            self._upload_condition.notify_all()

    def _parquet(self, batches: list[_Batch]) -> bytes:
        """The staged rows as one Parquet file: the fields of a JSON Lines row, ``features`` a struct."""
        import io

        import pyarrow as pa
        import pyarrow.parquet as pq

        names = list(dict.fromkeys(name for batch in batches for name in batch.names))
        positions = [dict(zip(batch.names, batch.columns, strict=True)) for batch in batches]
        features = []
        for name in names:
            values = []
            for batch, columns in zip(batches, positions, strict=True):
                values.extend(columns[name] if name in columns else [None] * batch.rows)
            features.append(_arrow(values))
        rows = sum(batch.rows for batch in batches)
        # One timestamp a call, repeated; the fields every row shares as one-entry dictionaries.
        micros = np.repeat(np.array([int(_parse_stamp(b.timestamp).timestamp() * 1e6) for b in batches], "int64"),
                           [b.rows for b in batches])
        stamps = pa.array(micros, pa.timestamp("us", tz="UTC"))
        zeros = pa.array(np.zeros(rows, "int32"))
        table = pa.table({
            "timestamp": stamps,
            "model_name": pa.DictionaryArray.from_arrays(zeros, pa.array([self._model_name])),
            "model_version": pa.array(np.full(rows, self._model_version, "int64")),
            "data_fingerprint": pa.DictionaryArray.from_arrays(zeros, pa.array([self._fingerprint])),
            "features": pa.StructArray.from_arrays(features, names) if names
            else pa.array([{}] * rows, pa.struct([])),
            "prediction": _arrow([v for batch in batches for v in batch.predictions]),
            "probability": pa.array([v for batch in batches for v in batch.probabilities], pa.float64(),
                                    from_pandas=True),
            "request_id": pa.array([v for batch in batches
                                    for v in (batch.request_ids or [None] * batch.rows)], pa.string()),
            "traffic": pa.array([batch.traffic for batch in batches for _ in range(batch.rows)], pa.string()),
        })
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="zstd")
        return sink.getvalue()

    def _upload_loop(self) -> None:
        while True:
            with self._upload_condition:
                while not self._uploads and not self._writer_done:
                    self._upload_condition.wait(timeout=self.flush_seconds)
                if not self._uploads or self._abandoned:
                    return
                current = self._uploads[0]
                self._uploading = current.rows
            try:
                self.fs.pipe_file(current.path, current.data)
            except Exception as exc:  # any storage failure: count, say why, back off, try again
                current.attempts += 1
                self.errors += 1
                reason = _describe_error(exc)
                if self._on_upload_error is not None:
                    self._on_upload_error(reason)
                delay = min(MAX_BACKOFF, 0.5 * 2 ** (current.attempts - 1))
                logger.warning("inference log %s: upload of %s (%d rows) failed (attempt %d): %s; retrying in %.1f s",
                               self.location, current.path.rsplit("/", 1)[-1], current.rows, current.attempts,
                               reason, delay)
                with self._upload_condition:
                    self._uploading = 0
                    if self._abandoned:  # counted as lost by close(): stop retrying, end the thread
                        return
                    self._upload_condition.wait(timeout=delay)
                continue
            with self._upload_condition:
                self._uploads.popleft()
                self._uploading = 0
            self.objects.append(current.path)
            self.written += current.rows
            self._release(current.rows)
            if self._on_write is not None:
                self._on_write(current.rows)

    # -- shutdown ----------------------------------------------------------------------
    def close(self, timeout: float = 10.0) -> None:
        """Store what is buffered within ``timeout`` seconds and stop; rows still unstored then are
        counted as dropped (reason ``shutdown``)."""
        deadline = time.monotonic() + timeout
        with self._condition:
            self._closing = True
            self._condition.notify()
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._uploader is not None:
            with self._upload_condition:
                self._upload_condition.notify_all()  # wake a backoff wait: one last attempt now
            self._uploader.join(max(0.0, deadline - time.monotonic()))
        lost = self._pending_rows
        if lost > 0:
            if self._uploader is not None:
                with self._upload_condition:
                    # The rows are counted as lost now; an uploader still retrying must not go on
                    # for ever in a process that outlives this writer (a test run, an embedding app).
                    self._abandoned = True
                    self._upload_condition.notify_all()
            with self._condition:
                self._pending_rows = 0
            self._drop(lost, "shutdown", f"storage did not take them within {timeout:g} s")

    @property
    def running(self) -> bool:
        """Whether the writer's threads are alive; after close() they end, within its timeout or, when
        storage refused the last rows, at the uploader's next wake-up."""
        return self._thread.is_alive() or (self._uploader is not None and self._uploader.is_alive())

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every accepted row is stored (for objects: the staged file sealed and uploaded now,
        not at its rotation); False when that took longer than ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._condition:
                if self._pending_rows == 0:
                    return True
                self._seal_now = True
                self._condition.notify()
            time.sleep(0.01)
        return False


def _arrow(values: list):
    """An Arrow array of a column's values; NaN as null; a column Arrow cannot type as one kind, as text."""
    import pyarrow as pa

    try:
        return pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in values],
                        pa.string())


def _parse_stamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


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
    """What ``read_log`` found: the rows as a frame, and how much it listed, read and skipped."""

    frame: pd.DataFrame
    rows: int
    corrupt_lines: int
    files: int  # files or objects read
    other_traffic: int = 0  # rows inside the window marked as other traffic (smoke, checks): left out
    other_versions: int = 0  # rows inside the window that another model version answered: left out
    corrupt_objects: int = 0  # objects skipped whole: a line that does not parse, or bytes that are not text
    outside_window: int = 0  # objects listed but not downloaded: their names say they end before the window
    read_names: tuple[str, ...] = ()


def read_log(location: str, since: datetime | None = None, model_version: int | None = None,
             traffic: str | None = PRODUCTION) -> LogRead:
    """Every logged row under ``location`` (a directory or fsspec URI), oldest first, in one frame.

    ``frame`` has one column per feature plus ``prediction``, ``probability``, ``timestamp``
    (tz-aware UTC), ``model_version``, ``request_id`` and ``traffic``. Only rows of ``traffic``
    (production by default; None: every row) are kept, the others counted. In local files, lines
    that do not parse (a crash's partial last line, a hand edit) are skipped and counted. Uploaded
    objects are whole by construction: one with a line that does not parse is skipped whole and
    counted. With ``since``, only the day
    partitions the window touches are listed, and only objects whose last row is inside it are
    downloaded; each object is read once. A missing directory or prefix gives an empty frame; a
    location the storage refuses (credentials, a missing bucket) raises ``LogLocationError``.

    Memory grows with the rows: a reader that needs a bounded sample iterates a ``LogStream``.
    """
    stream = LogStream(location, since=since, model_version=model_version, traffic=traffic)
    return stream.result(_frame(list(stream)))


class LogStream:
    """The rows of ``read_log``, one file or object at a time, so a reader can sample as it goes.

    Listing happens here, at once (a refused location raises ``LogLocationError`` before any row);
    iterating downloads one file or object at a time and yields its rows of the window, the traffic
    and the version (columns in the object's order: ``log_frame`` puts what is kept in ``read_log``'s
    shape and order once, not once an object). The counts fill in while it runs.
    """

    def __init__(self, location: str, since: datetime | None = None, model_version: int | None = None,
                 traffic: str | None = PRODUCTION) -> None:
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        self.location, self.since, self.model_version, self.traffic = location, since, model_version, traffic
        self.fs, self.entries, self.outside_window = _log_entries(location, since)
        self.rows = self.corrupt_lines = self.corrupt_objects = self.other_traffic = self.other_versions = 0

    def __iter__(self) -> Iterator[pd.DataFrame]:
        for path, whole in self.entries:
            part = self._read(path, whole)
            if part is None or part.empty:
                continue
            if not whole:  # JSON Lines: timestamps parsed line by line, typed here; Parquet comes typed
                part = _frame([part])
            part = self._kept(part)
            self.rows += len(part)
            if len(part):
                yield part

    def _kept(self, part: pd.DataFrame) -> pd.DataFrame:
        """The part's rows inside the window, of the traffic and the version; the others inside the
        window counted (one mask, so a part kept whole is not copied)."""
        every = np.ones(len(part), dtype=bool)
        inside = every if self.since is None else (part["timestamp"] >= pd.Timestamp(self.since)).to_numpy()
        traffic = every if self.traffic is None else (part["traffic"] == self.traffic).to_numpy()
        version = every if self.model_version is None else (part["model_version"] == self.model_version).to_numpy()
        self.other_traffic += int((inside & ~traffic).sum())
        self.other_versions += int((inside & traffic & ~version).sum())
        keep = inside & traffic & version
        return part if keep.all() else part[keep].reset_index(drop=True)

    def _read(self, path: str, whole: bool) -> pd.DataFrame | None:
        """One file's or object's rows; None when it is gone or (an object) corrupt, which is counted."""
        data = _download(self.fs, path, self.location)
        if data is None:
            return None
        if not whole:
            records, bad_lines = _parse_text(data)
            self.corrupt_lines += bad_lines
            return pd.DataFrame.from_records(records) if records else None
        part = _parquet_frame(data)
        if part is None:
            self.corrupt_objects += 1
            logger.warning("inference log %s: skipped corrupt object %s (not a Parquet file of the log's fields)",
                           self.location, path.rsplit("/", 1)[-1])
        return part

    def result(self, frame: pd.DataFrame) -> LogRead:
        """What was read, with ``frame`` (all the rows, or a sample of them) as its rows."""
        return LogRead(frame=frame.reset_index(drop=True), rows=self.rows, corrupt_lines=self.corrupt_lines,
                       files=len(self.entries), other_traffic=self.other_traffic,
                       other_versions=self.other_versions, corrupt_objects=self.corrupt_objects,
                       outside_window=self.outside_window, read_names=tuple(path for path, _ in self.entries))


def log_frame(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Frames of ``LogStream`` (or a sample of them) as one, shaped as ``read_log``'s: the features, then the
    log's own columns typed, oldest first; with no rows, just the log's own columns."""
    return _frame(frames)


def _download(fs, path: str, location: str) -> bytes | None:
    """A file's or object's bytes; None when it went between the listing and the read (a retention rule)."""
    try:
        with fs.open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except Exception as exc:
        raise LogLocationError(f"inference log {location}: cannot read {path}: {_describe_error(exc)}") from None


def _parse_text(data: bytes) -> tuple[list[dict], int]:
    """The records of a JSON Lines file, and how many non-empty lines did not parse."""
    records, bad = [], 0
    for raw in data.decode("utf-8", errors="replace").splitlines():
        record = _parse_line(raw)
        if record is None:
            if raw.strip():
                bad += 1
            continue
        records.append(record)
    return records, bad


def _parquet_frame(data: bytes) -> pd.DataFrame | None:
    """An uploaded object as flat columns (features, prediction, probability, timestamp, model_version);
    None when it is not a Parquet file holding the log's fields."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(data))
        features = table.column("features").combine_chunks()
        if not pa.types.is_struct(features.type):
            return None
        columns = {features.type.field(i).name: features.field(i) for i in range(features.type.num_fields)}
        for name in ("prediction", "probability", "timestamp", "model_version"):
            columns[name] = table.column(name)
        frame = pa.table(columns).to_pandas()
        names = table.column_names
        frame["request_id"] = table.column("request_id").to_pandas() if "request_id" in names else None
        frame["traffic"] = table.column("traffic").to_pandas().astype(object) if "traffic" in names else PRODUCTION
        return frame
    except (pa.ArrowException, KeyError, ValueError, OSError):
        return None


def _log_entries(location: str, since: datetime | None) -> tuple[object, list[tuple[str, bool]], int]:
    """(fs, [(path, is an uploaded object)] in time order, objects left out by the window).

    Local files: ``predictions-<opened>-<pid>-<n>.jsonl`` directly under the location. Objects:
    ``dt=<day>/predictions-<first>-<last>-...jsonl``; with ``since``, only the day partitions from
    the day before ``since`` on are listed (a file's first and last rows are at most a rotation age,
    at most a day, apart), and an object whose last row is older than ``since`` is not downloaded.
    """
    fs, root = filesystem(location)
    root = root.rstrip("/")
    try:
        top = fs.ls(root, detail=False, **_fresh(fs))
    except FileNotFoundError:
        _check_container(fs, root, location)
        return fs, [], 0
    except Exception as exc:
        raise LogLocationError(f"inference log {location}: cannot list it: {_describe_error(exc)}") from None
    entries: dict[str, tuple[str, bool, str]] = {}
    outside = 0
    days = []
    for path in top:
        name = path.rstrip("/").rsplit("/", 1)[-1]
        if FILE_PATTERN.match(name):
            entries.setdefault(name, (path, False, FILE_PATTERN.match(name).group(1)))
        elif PARTITION_PATTERN.match(name):
            day = PARTITION_PATTERN.match(name).group(1)
            if since is None or day >= (since - timedelta(days=1)).strftime("%Y-%m-%d"):
                days.append(path)
    for day in sorted(days):
        try:
            listed = fs.ls(day, detail=False, **_fresh(fs))
        except FileNotFoundError:
            continue
        except Exception as exc:
            raise LogLocationError(f"inference log {location}: cannot list {day}: {_describe_error(exc)}") from None
        for path in listed:
            name = path.rstrip("/").rsplit("/", 1)[-1]
            match = OBJECT_PATTERN.match(name)
            if not match or name in entries:  # a name listed twice is read once
                continue
            last = datetime.strptime(match.group(2), NAME_TIME).replace(tzinfo=UTC)
            if since is not None and last + timedelta(seconds=1) < since:
                outside += 1
                continue
            entries[name] = (path, True, match.group(1))
    ordered = sorted(entries.values(), key=lambda entry: (entry[2], entry[0]))
    return fs, [(path, whole) for path, whole, _ in ordered], outside


def _fresh(fs) -> dict:
    """Listing options that bypass a filesystem's directory cache: new objects arrive all the time."""
    return {} if _is_local_fs(fs) else {"refresh": True}


def _is_local_fs(fs) -> bool:
    protocols = (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
    return any(p in LOCAL_PROTOCOLS for p in protocols)


def _check_container(fs, root: str, location: str) -> None:
    """A missing prefix is an empty log; a missing bucket (or container) is a location to fix."""
    if _is_local_fs(fs) or not root:
        return
    bucket = root.split("/", 1)[0]
    try:
        found = fs.exists(bucket)
    except Exception as exc:
        raise LogLocationError(f"inference log {location}: cannot reach {bucket}: {_describe_error(exc)}") from None
    if not found and protocol_of(location) in DRIVERS:
        raise LogLocationError(f"inference log {location}: the bucket or container {bucket!r} does not exist")


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


def _frame(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [frame for frame in frames if len(frame)]
    if not frames:
        return pd.DataFrame({
            "prediction": pd.Series(dtype=object), "probability": pd.Series(dtype=float),
            "timestamp": pd.Series(dtype="datetime64[ns, UTC]"), "model_version": pd.Series(dtype="int64"),
            "request_id": pd.Series(dtype=object), "traffic": pd.Series(dtype=object),
        })
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    features = [c for c in frame.columns if c not in META_COLUMNS]
    frame = frame[[*features, *META_COLUMNS]]
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True).astype("datetime64[ns, UTC]")
    frame["probability"] = pd.to_numeric(frame["probability"], errors="coerce")
    frame["model_version"] = frame["model_version"].astype("int64")
    return frame.sort_values("timestamp", kind="stable").reset_index(drop=True)
