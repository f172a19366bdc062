"""``feedback join``: labels that arrive later, joined with what the served model was asked and answered.

A label file (CSV or Parquet, path or URI) holds a key and the target: the prediction's
``request_id`` (what the service returned to the caller) or the project's ``id_column`` (a
``customer_id``). The join reads the production rows of the inference log inside the window and
writes the labelled recent data set that ``drift`` (model quality) and ``retrain`` read through
``[tool.gitops-ml.drift] feedback``: the contract's columns (features and target), then the
prediction, its probability, its time, its model version and its request id.

Rules:
- a key labelled twice is refused (exit 1), the keys named: which label is true cannot be guessed;
- a key predicted more than once in the window (a customer scored every week) is joined to the
  newest prediction; those keys are counted as duplicates;
- labels with no logged prediction, and predictions with no label, are counted, never invented;
- no match at all is refused, leaving the previous output as it was;
- the output is written whole or not at all: a temporary file renamed over it (one object PUT on
  an object store).
"""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from ..config import Spec
from ..data import load_schema, read_table, table_format
from ..errors import CheckFailed, ConfigError, DataError, GitopsMLError
from ..layout import TIMESTAMP
from .sources import parse_duration, refuse_when_logging_off

REQUEST_ID = "request_id"
LOGGED = ("prediction", "probability", TIMESTAMP, "model_version", REQUEST_ID)
LISTED = 10  # keys named in a message


@dataclass
class JoinResult:
    labels: str
    log: str
    on: str
    window: str
    output: str
    label_rows: int = 0
    logged_rows: int = 0
    matched: int = 0
    unmatched_labels: int = 0
    unlabelled_predictions: int = 0
    duplicate_logged_keys: int = 0
    duplicate_label_keys: list[str] = field(default_factory=list)
    unmatched_examples: list[str] = field(default_factory=list)
    written: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


def key_of(spec: Spec, on: str | None) -> str:
    """The join key: ``request_id`` (default) or the project's ``id_column``."""
    key = on or REQUEST_ID
    allowed = [REQUEST_ID, *([spec.id_column] if spec.id_column else [])]
    if key not in allowed:
        hint = "" if spec.id_column else " (set [tool.gitops-ml] id_column to join on a column of the contract)"
        raise ConfigError(f"--on {key!r}: join on {' or '.join(allowed)}{hint}")
    return key


def output_of(spec: Spec, output: str | None) -> str:
    """Where the joined data goes: ``-o`` (relative to here), else ``[tool.gitops-ml.drift] feedback``."""
    if output:
        return output if "://" in output else str(Path(output).resolve())
    if spec.drift.feedback:
        return spec.resolve(spec.drift.feedback)
    raise ConfigError(f"no output: give -o URI or set [tool.gitops-ml.drift] feedback in {spec.pyproject}")


def _text_keys(values: pd.Series) -> pd.Series:
    """Keys as text on both sides: 123, 123.0 and "123" are one key; nulls stay null."""
    def one(value: object) -> object:
        if value is None or (isinstance(value, float) and value != value):
            return None
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)

    return values.map(one).astype(object)


def _listed(keys: list[str]) -> str:
    shown = ", ".join(keys[:LISTED])
    return shown + (f" (+{len(keys) - LISTED} more)" if len(keys) > LISTED else "")


def read_labels(spec: Spec, labels: str, key: str) -> pd.DataFrame:
    """The label file's key and target, checked: both present, no nulls; duplicates are the caller's."""
    location = labels if "://" in labels else str(Path(labels).resolve())
    frame = read_table(location, dtype={key: str} if table_format(location) == "csv" else None)
    missing = [c for c in (key, spec.target) if c not in frame.columns]
    if missing:
        found = ", ".join(map(str, frame.columns))
        raise DataError(f"{labels}: no column {' or '.join(map(repr, missing))} (a label file holds the key "
                        f"{key!r} and the target {spec.target!r}); its columns are {found}")
    frame = frame[[key, spec.target]].assign(**{key: _text_keys(frame[key])})
    for column in (key, spec.target):
        empty = frame.index[frame[column].isna()].tolist()
        if empty:
            raise DataError(f"{labels}: column {column!r} is empty in {len(empty)} rows "
                            f"(rows {_listed([str(r) for r in empty])}); every label needs a key and a target")
    return frame.reset_index(drop=True)


def read_logged(spec: Spec, window: str):
    """Production rows of the inference log inside the window (every model version)."""
    from ..serve.inference_log import read_log

    location = spec.resolve(spec.serving.inference_log)
    since = datetime.now(UTC) - parse_duration(window)
    try:
        return location, read_log(location, since=since)
    except GitopsMLError:
        raise
    except ImportError as exc:
        raise CheckFailed(f"inference log {location}: no driver for this location ({exc})") from exc
    except Exception as exc:  # credentials refused, access denied: name the location, exit 1
        raise CheckFailed(f"inference log {location}: cannot be read: {type(exc).__name__}: {exc}") from exc


def join(spec: Spec, labels: str, on: str | None = None, window: str = "30d", output: str | None = None) -> JoinResult:
    """Join ``labels`` with the logged predictions of the last ``window``; write the labelled data set."""
    refuse_when_logging_off(spec, "there are no logged predictions to join labels with")
    key = key_of(spec, on)
    target = output_of(spec, output)
    table_format(target)  # refuse an output name of no known format before reading anything
    parse_duration(window)
    label_frame = read_labels(spec, labels, key)
    location, log = read_logged(spec, window)
    result = JoinResult(labels=labels, log=location, on=key, window=window, output=target,
                        label_rows=len(label_frame), logged_rows=log.rows)

    repeated = label_frame[key][label_frame[key].duplicated(keep=False)]
    if not repeated.empty:
        result.duplicate_label_keys = sorted(set(repeated))
        raise CheckFailed(f"{labels}: {len(result.duplicate_label_keys)} keys labelled more than once "
                          f"({key} {_listed(result.duplicate_label_keys)}); keep one label per key", result)

    logged = log.frame
    if key not in logged.columns:  # a log written before the id column was part of the contract
        logged = logged.assign(**{key: None})
    logged = logged.assign(**{key: _text_keys(logged[key])})
    logged = logged[logged[key].notna()]
    result.duplicate_logged_keys = int((logged[key].value_counts() > 1).sum())
    newest = logged.drop_duplicates(subset=key, keep="last")  # the log reads oldest first

    labelled_keys = set(label_frame[key])
    logged_keys = set(newest[key])
    unmatched = sorted(labelled_keys - logged_keys)
    result.unmatched_labels = len(unmatched)
    result.unmatched_examples = unmatched[:LISTED]
    result.unlabelled_predictions = len(logged_keys - labelled_keys)
    merged = newest.drop(columns=[spec.target], errors="ignore").merge(label_frame, on=key, how="inner")
    result.matched = len(merged)
    if merged.empty:
        raise CheckFailed(f"no label of {labels} matched a production prediction logged in {location} in the last "
                          f"{window} (on {key}; {log.rows} rows logged): {target} left as it was", result)

    schema_columns = [str(c) for c in load_schema(spec).columns]
    columns = [c for c in schema_columns if c in merged.columns]
    columns += [c for c in LOGGED if c in merged.columns and c not in columns]
    frame = merged[columns].copy()
    frame[TIMESTAMP] = pd.to_datetime(frame[TIMESTAMP], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    write_whole(frame, target)
    result.written = True
    return result


def write_whole(frame: pd.DataFrame, target: str) -> None:
    """Write CSV or Parquet (by the name) whole or not at all: a temporary file renamed over the target
    locally, one PUT of the finished bytes on an object store."""
    kind = table_format(target)
    buffer = io.BytesIO()
    if kind == "csv":
        buffer.write(frame.to_csv(index=False).encode("utf-8"))
    else:
        frame.to_parquet(buffer, index=False)
    data = buffer.getvalue()
    if "://" in target and not target.startswith("file://"):
        import fsspec

        fs, path = fsspec.core.url_to_fs(target)
        fs.pipe_file(path, data)
        return
    path = Path(target.removeprefix("file://"))
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, scratch = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(scratch, path)
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise
