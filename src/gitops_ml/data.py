"""Data: load CSV or Parquet from a path or URI, check it against the pandera contract, fingerprint it."""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import fsspec
import pandas as pd
import pandera.errors
import pandera.pandas as pa

from .config import Spec
from .errors import ConfigError, DataError

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
MAX_LISTED_VALUES = 5  # failing values shown per (column, check) in tables
OTHER_DELIMITERS = (";", "\t", "|")  # what a CSV saved by a spreadsheet in another locale is split by
HEADER_BYTES = 1 << 16  # enough of a file to hold its header line


def table_format(uri: str) -> str:
    """``csv`` or ``parquet`` from the file name (a ``.gz`` CSV is fine)."""
    name = uri.lower().removesuffix(".gz")
    for suffix, kind in FORMATS.items():
        if name.endswith(suffix):
            return kind
    raise ConfigError(f"{uri}: unknown data format; use a .csv, .csv.gz, .parquet or .pq file")


def read_table(uri: str, dtype: dict[str, object] | None = None) -> pd.DataFrame:
    """Read a whole table from a local path or an fsspec URI (file, s3, gs, http...).

    ``dtype`` pins a CSV column's type (an id read as text keeps its leading zeros); Parquet has its own."""
    frames = list(iter_table(uri, dtype=dtype))
    if not frames:
        raise DataError(f"{uri}: the file is empty")
    frame = frames[0]
    check_unique_columns([str(c) for c in frame.columns], uri)
    if frame.empty:
        raise DataError(f"{uri}: the file has a header but no rows")
    return frame


def iter_table(uri: str, chunk_rows: int | None = None, dtype: dict[str, object] | None = None,
               ) -> Iterator[pd.DataFrame]:
    """A CSV or Parquet table (path or fsspec URI): whole, or in chunks of ``chunk_rows`` so that a
    large file is read in bounded memory. A zero-byte CSV yields nothing. The header is checked first,
    since pandas misreads a repeated column or another delimiter without a word."""
    kind = table_format(uri)
    if "://" not in uri and not Path(uri).is_file():
        raise ConfigError(f"{uri}: file not found")
    try:
        if kind == "csv":
            check_csv_header(read_csv_header(uri), uri)
        with fsspec.open(uri, "rb", compression="infer") as handle:
            if kind == "csv":
                try:
                    reader = pd.read_csv(handle, chunksize=chunk_rows, dtype=dtype)
                except pd.errors.EmptyDataError:
                    return
                yield from [reader] if chunk_rows is None else reader
            elif chunk_rows is None:
                yield pd.read_parquet(handle)
            else:
                import pyarrow.parquet as pq

                for batch in pq.ParquetFile(handle).iter_batches(batch_size=chunk_rows):
                    yield batch.to_pandas()
    except (ConfigError, DataError):
        raise
    except FileNotFoundError as exc:
        raise ConfigError(f"{uri}: file not found") from exc
    except Exception as exc:  # a malformed CSV, a file that is not Parquet, a network or permission error
        raise DataError(f"{uri}: not a readable {kind.upper()} file: {exc}") from exc


def check_csv_header(head: bytes, uri: str) -> None:
    """Refuse a header pandas would misread: repeated names (pandas invents ``name.1``) or another delimiter."""
    first_line = head.decode("utf-8-sig", errors="replace").splitlines()[:1]
    if not first_line or not first_line[0].strip():
        return  # empty files are reported by the reader
    names = next(csv.reader([first_line[0]]))
    check_unique_columns(names, uri)
    if len(names) == 1:
        found = [d for d in OTHER_DELIMITERS if d in names[0]]
        if found:
            shown = {"\t": "tab"}.get(found[0], repr(found[0]))
            raise DataError(
                f"{uri}: the header reads as one column {names[0][:80]!r}: the delimiter looks wrong "
                f"({shown} found, the file must be comma-separated)"
            )


def read_csv_header(uri: str) -> bytes:
    """The first bytes of a CSV (path or fsspec URI), decompressed, to check its header before streaming it."""
    with fsspec.open(uri, "rb", compression="infer") as handle:
        return handle.read(HEADER_BYTES)


def check_unique_columns(names: list[str], uri: str) -> None:
    """Each column once: a repeated name makes every later check read the wrong column."""
    seen: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        if name in seen:
            raise DataError(
                f"{uri}: duplicate column {name!r} (columns {seen[name]} and {position} of the header); "
                "each column must appear once"
            )
        seen[name] = position


@dataclass(frozen=True)
class Failure:
    """Every row that failed one check of one column."""

    column: str
    check: str
    values: list[str]
    rows: list[int]

    @property
    def count(self) -> int:
        return len(self.rows) or len(self.values)


@dataclass
class ValidationReport:
    """The outcome of checking one table against the contract."""

    source: str
    rows: int
    columns: int
    failures: list[Failure] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "rows": self.rows,
            "columns": self.columns,
            "passed": self.passed,
            "failures": [
                {"column": f.column, "check": f.check, "count": f.count, "values": f.values, "rows": f.rows}
                for f in self.failures
            ],
        }


def load_schema(spec: Spec) -> pa.DataFrameSchema:
    """The project's pandera schema object, from the ``schema`` field."""
    model = spec.load_object("schema")
    try:
        return model.to_schema()
    except AttributeError as exc:
        raise ConfigError(
            f"{spec.pyproject}: [tool.gitops-ml] field 'schema': {spec.schema_!r} is not a pandera DataFrameModel"
        ) from exc


def validate_frame(
    frame: pd.DataFrame, schema: pa.DataFrameSchema, source: str
) -> tuple[pd.DataFrame, ValidationReport]:
    """Check every row and column at once (lazy), returning the coerced frame and the report."""
    report = ValidationReport(source=source, rows=len(frame), columns=frame.shape[1])
    try:
        return schema.validate(frame, lazy=True), report
    except pandera.errors.SchemaErrors as exc:
        report.failures = _failures(exc.failure_cases)
    except pandera.errors.SchemaError as exc:  # raised eagerly by some checks even when lazy
        report.failures = [Failure(column=str(exc.schema.name or ""), check=str(exc.check or exc), values=[], rows=[])]
    return frame, report


def _failures(cases: pd.DataFrame) -> list[Failure]:
    """Group pandera's failure cases by (column, check), so each problem reads as one line."""
    cases = cases.copy()
    cases["column"] = cases["column"].fillna(cases.get("schema_context", "")).astype(str)
    cases["check"] = cases["check"].astype(str)
    cases = _drop_echoes(cases)
    failures = []
    for (column, check), group in cases.groupby(["column", "check"], sort=False):
        rows = [int(i) for i in group["index"].dropna().tolist()]
        values = [str(v) for v in group["failure_case"].tolist()]
        failures.append(Failure(column=_column_name(column, check, values), check=check, values=values, rows=rows))
    return failures


def _drop_echoes(cases: pd.DataFrame) -> pd.DataFrame:
    """A value that cannot be coerced also fails the dtype check and makes range checks raise
    TypeError; only the coercion failure says what is wrong, so keep that one."""
    uncoerced = set(cases.loc[cases["check"].str.startswith("coerce_dtype"), "column"])
    echo = cases["column"].isin(uncoerced) & (
        cases["check"].str.startswith("dtype(") | cases["failure_case"].astype(str).str.startswith("TypeError(")
    )
    return cases[~echo]


def _column_name(column: str, check: str, values: list[str]) -> str:
    # Column-presence checks are reported against the frame; name the column they are about.
    if check in {"column_in_dataframe", "column_in_schema"} and values:
        return values[0]
    return column


def check_data(spec: Spec, uri: str | None = None) -> tuple[pd.DataFrame, ValidationReport]:
    """Load a table (default: the training data) and validate it against the project's contract."""
    uri = spec.resolve(uri) if uri else spec.data_uri
    frame = read_table(uri)
    if spec.target not in frame.columns:
        # Said before the contract check, which would list it among many missing or extra columns.
        raise DataError(
            f"{uri}: no column {spec.target!r}, the target ([tool.gitops-ml] field 'target' in {spec.pyproject}); "
            f"its columns are {', '.join(map(str, frame.columns))}"
        )
    return validate_frame(frame, load_schema(spec), uri)


def fingerprint(frame: pd.DataFrame) -> str:
    """sha256 of the canonical data: columns in name order, their dtypes, then every row's hash.

    Two files with the same rows and contract give the same fingerprint, whatever the
    column order or file format.
    """
    ordered = frame[sorted(frame.columns)].reset_index(drop=True)
    digest = hashlib.sha256()
    digest.update(repr([(c, str(ordered[c].dtype)) for c in ordered.columns]).encode())
    digest.update(pd.util.hash_pandas_object(ordered, index=False).to_numpy().tobytes())
    return digest.hexdigest()
