"""The request contract: the project's pandera schema, turned into a pydantic model the service checks.

Training data and served requests share one contract. At package time ``derive_contract`` reads the
pandera schema into a plain JSON description (names, types, nullability, ranges, categories,
patterns) that is baked into the bento; at serve time ``request_model`` builds the pydantic model
from it, so the bento needs neither pandera nor the project's own code to check a request.

Rules, per column of the schema (the target excluded):
- a non-nullable column is a required field; a nullable one may be null or left out (then null);
- numbers are strict: ``"42"`` is not a number; an integer field refuses ``4.5``; a float field
  takes integers; NaN and infinities are refused;
- ``ge``/``gt``/``le``/``lt``/``in_range`` become bounds, ``isin`` a closed set of values,
  ``str_matches`` an anchored pattern, ``str_length`` length bounds;
- checks that have no pydantic equivalent (custom checks, frame-wide checks) are listed as
  ``unenforced`` in the contract and in the service's ``/metadata``.
- extra fields: ``[tool.gitops-ml.serving] extra_fields = "reject"`` (default) answers 400 naming the
  field, since an unexpected field usually means a client built against another contract;
  ``"ignore"`` drops them silently (they are neither predicted on nor logged).
"""

from __future__ import annotations

import json
import math
import operator
import re
from dataclasses import dataclass
from datetime import datetime
from itertools import accumulate
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, create_model

# pandera check name -> (contract key, statistic) for the bounds pydantic knows
_BOUNDS = {
    "greater_than_or_equal_to": ("ge", "min_value"),
    "greater_than": ("gt", "min_value"),
    "less_than_or_equal_to": ("le", "max_value"),
    "less_than": ("lt", "max_value"),
}


# -- package time: pandera -> JSON -----------------------------------------------------------
def derive_contract(schema: Any, exclude: set[str] | frozenset[str] = frozenset()) -> dict:
    """A JSON-able description of a pandera ``DataFrameSchema``'s columns (``exclude``: e.g. the target)."""
    columns = []
    unenforced = [f"(frame) {check.name}" for check in getattr(schema, "checks", [])]
    for name, column in schema.columns.items():
        if name in exclude:
            continue
        entry: dict[str, Any] = {
            "name": str(name),
            "type": _json_type(column.dtype),
            "nullable": bool(column.nullable),
            "required": bool(column.required),
        }
        for check in column.checks:
            if not _apply_check(entry, check.name, dict(check.statistics or {})):
                unenforced.append(f"{name}: {check.name}")
        columns.append(entry)
    return {"columns": columns, "unenforced": unenforced}


def _json_type(dtype: Any) -> str:
    text = str(dtype).lower()
    if "int" in text:
        return "integer"
    if "float" in text or "decimal" in text:
        return "number"
    if "bool" in text:
        return "boolean"
    if "datetime" in text or "timestamp" in text:
        return "datetime"
    return "string"  # str, object, category


def _apply_check(entry: dict, check: str, stats: dict) -> bool:
    """Record one pandera check in the column's entry; False when pydantic cannot enforce it."""
    if check in _BOUNDS:
        key, stat = _BOUNDS[check]
        entry[key] = _plain(stats[stat])
    elif check == "in_range":
        entry["ge" if stats.get("include_min", True) else "gt"] = _plain(stats["min_value"])
        entry["le" if stats.get("include_max", True) else "lt"] = _plain(stats["max_value"])
    elif check == "equal_to":
        entry["isin"] = [_plain(stats["value"])]
    elif check == "isin":
        entry["isin"] = [_plain(v) for v in stats["allowed_values"]]
    elif check == "notin":
        entry["notin"] = [_plain(v) for v in stats["forbidden_values"]]
    elif check == "str_matches":
        pattern = str(stats["pattern"])
        # pandera matches at the start (re.match); pydantic searches: anchor it the same way.
        entry["pattern"] = pattern if pattern.startswith("^") else f"^(?:{pattern})"
    elif check == "str_startswith":
        entry["pattern"] = "^" + _escape(str(stats["string"]))
    elif check == "str_length":
        if stats.get("min_value") is not None:
            entry["min_length"] = int(stats["min_value"])
        if stats.get("max_value") is not None:
            entry["max_length"] = int(stats["max_value"])
    else:
        return False
    return True


def _escape(text: str) -> str:
    return re.escape(text)


def strict_pattern(pattern: str) -> str:
    r"""The pattern as requests are checked: ``\d`` and ``\w`` are ASCII only, and a closing ``$`` is the
    end of the text (Python's ``$`` also matches before a trailing newline).

    A request is parsed as the contract's type, strictly: a date written in Arabic-Indic digits, or
    ``"2025-10-19\n"``, is not a ``YYYY-MM-DD`` date, and would not parse as one downstream.
    """
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + "\\Z"
    return "(?a)" + pattern


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


# -- serve time: JSON -> pydantic ------------------------------------------------------------
def request_model(contract: dict, extra_fields: str = "reject", name: str = "Record") -> type[BaseModel]:
    """The pydantic model of one request record."""
    if extra_fields not in ("reject", "ignore"):
        raise ValueError(f"serving.extra_fields must be 'reject' or 'ignore', got {extra_fields!r}")
    fields: dict[str, Any] = {}
    for index, column in enumerate(contract["columns"]):
        annotation = _annotation(column)
        optional = column["nullable"] or not column["required"]
        # Column names come from the data ("monthly charges", "model_config"): each field is an
        # alias of a safe attribute name, and requests, errors and dumps all use the column name.
        if optional:
            fields[f"field_{index}"] = (annotation | None, Field(None, alias=column["name"]))
        else:
            fields[f"field_{index}"] = (annotation, Field(..., alias=column["name"]))
    config = ConfigDict(
        extra="forbid" if extra_fields == "reject" else "ignore",
        regex_engine="python-re",  # pandera's patterns are Python regular expressions
        allow_inf_nan=False,
        serialize_by_alias=True,
        validate_by_name=False,
        validate_by_alias=True,
    )
    return create_model(name, __config__=config, **fields)


def _annotation(column: dict) -> Any:
    kind = column["type"]
    if column.get("isin") is not None:
        # A closed set: the error lists the allowed values; the type check keeps true from passing as 1.
        return Annotated[Literal[tuple(column["isin"])], BeforeValidator(_of_type(kind))]  # type: ignore[misc]
    constraints = {key: column[key] for key in ("ge", "gt", "le", "lt", "min_length", "max_length")
                   if column.get(key) is not None}
    if column.get("pattern") is not None:
        constraints["pattern"] = strict_pattern(column["pattern"])
    if kind == "number":
        # A float column takes 3 as 3.0 but never "3" or true.
        annotation: Any = Annotated[float, BeforeValidator(_number_only), Field(**constraints)]
    elif kind == "datetime":
        annotation = Annotated[datetime, Field(strict=True, **constraints)]  # an ISO 8601 string, not a number
    else:
        python_type = {"integer": int, "string": str, "boolean": bool}[kind]
        annotation = Annotated[python_type, Field(strict=True, **constraints)]
    if column.get("notin"):
        annotation = Annotated[annotation, AfterValidator(_refuse(set(column["notin"])))]
    return annotation


def _refuse(forbidden: set) -> Any:
    def check(value: Any) -> Any:
        if value in forbidden:
            raise ValueError(f"value {value!r} is not allowed")
        return value

    return check


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "integer": (int,), "number": (int, float), "string": (str,), "boolean": (bool,), "datetime": (str,)}


def _of_type(kind: str) -> Any:
    expected = _JSON_TYPES[kind]

    def check(value: Any) -> Any:
        wrong = not isinstance(value, expected) or (kind != "boolean" and isinstance(value, bool))
        if value is not None and wrong:
            raise ValueError(f"Input should be a valid {kind}")
        return value

    return check


def _number_only(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("Input should be a valid number")
    return value


# -- rows -> the model's input frame --------------------------------------------------------
def to_frame(rows: list[dict], contract: dict) -> pd.DataFrame:
    """Checked records as the frame the model was trained on: contract column order and dtypes.

    Built column by column from plain lists (ten times faster than ``DataFrame.from_records`` and
    ``astype``, which dominated a 100-row request).
    """
    data = {}
    for column in contract["columns"]:
        name, kind = column["name"], column["type"]
        values = [row.get(name) for row in rows]
        has_null = any(value is None for value in values)
        if kind in ("integer", "number"):
            if kind == "integer" and not has_null:
                data[name] = np.array(values, dtype="int64")
            else:
                data[name] = np.array([np.nan if v is None else v for v in values], dtype="float64")
        elif kind == "datetime":
            data[name] = pd.to_datetime(pd.Series(values, dtype=object))
        elif kind == "boolean":
            data[name] = pd.array(values, dtype="boolean") if has_null else np.array(values, dtype=bool)
        else:
            # Missing strings as NaN, as pandas reads them from the training CSV or Parquet.
            data[name] = np.array([np.nan if v is None else v for v in values] if has_null else values, dtype=object)
    return pd.DataFrame(data, columns=[c["name"] for c in contract["columns"]])


# -- request bodies: bounded nesting -------------------------------------------------------
# A JSON string, escapes included; the unrolled form is ten times faster than (?:[^"\\]|\\.)*.
_STRINGS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_BRACKETS = bytes(range(256)).translate(None, b"[]{}")  # every byte but the brackets: deleted
_STEP = [0] * 256
_STEP[ord("[")] = _STEP[ord("{")] = 1
_STEP[ord("]")] = _STEP[ord("}")] = -1


def nesting_depth(body: bytes) -> int:
    """How deeply a JSON text nests arrays and objects, without parsing it.

    A parser recurses per level: a 2 KB body nested 1,000 levels deep used to end in a RecursionError
    (a 500). Strings are cut out first, so brackets inside them do not count.
    """
    brackets = _STRINGS.sub(b"", body).translate(None, _BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def nests_deeper_than(body: bytes, limit: int) -> int | None:
    """The body's depth when it is above ``limit``, else None; costs a few C-level passes in the usual case.

    Brackets are first counted on the raw bytes (0.03 ms for 100 records); only a body that looks deeper
    than ``limit`` is measured exactly with strings cut out (``nesting_depth``, ten times that), so
    brackets inside string values never refuse a good request. A body that looks shallow because its
    strings close brackets is still bounded by the JSON parser (200 levels, a 400 ``json_invalid``).
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return None
    rough = max(accumulate(map(_STEP.__getitem__, body.translate(None, _BRACKETS))), default=0)
    if rough <= limit:
        return None
    depth = nesting_depth(body)
    return depth if depth > limit else None


# -- batches: checked and converted column by column ------------------------------------------
_MISSING = object()
_LARGEST = 1.7976931348623157e308  # beyond it a JSON number is no float64


@dataclass(frozen=True)
class Columns:
    """Checked rows of one request as columns: what the model frame and the inference log are built from.

    ``values`` holds each contract column's values in row order (``None`` for a null); number columns
    are floats (NaN for a null), as the model and the log read them.
    """

    values: dict[str, list]
    rows: int

    @staticmethod
    def concat(parts: list[Columns]) -> Columns:
        """Several requests' columns as one (concurrent requests merged into one model call)."""
        if len(parts) == 1:
            return parts[0]
        names = parts[0].values
        return Columns({name: [v for part in parts for v in part.values[name]] for name in names},
                       sum(part.rows for part in parts))

    @staticmethod
    def of_rows(rows: list[dict], contract: dict) -> Columns:
        """Already checked records (pydantic dumps) as columns."""
        return Columns({c["name"]: [row.get(c["name"]) for row in rows] for c in contract["columns"]}, len(rows))


class BatchChecker:
    """The request contract checked on whole columns of a batch.

    The common case, every row good, costs one pass per column over plain Python values (min, max,
    set membership, one type test), with no per-row model objects. Rows that fail any column are then
    checked one by one with the pydantic record model, so the 400 says exactly what a per-record check
    says: every failing row and field, ``loc`` = ``("root", row index, field)``.
    """

    def __init__(self, contract: dict, record_model: type[BaseModel], extra_fields: str = "reject") -> None:
        self.contract = contract
        self.record_model = record_model
        self.reject_extra = extra_fields == "reject"
        self.names = [c["name"] for c in contract["columns"]]
        self.known = frozenset(self.names)
        self.checks = [(c["name"], _column_check(c)) for c in contract["columns"]]
        single = len(self.names) == 1
        getter = operator.itemgetter(*self.names)
        self.getter = (lambda row: (getter(row),)) if single else getter

    def check(self, records: list[dict]) -> Columns:
        """The records as columns, or ``pydantic.ValidationError`` naming every failing row and field."""
        bad: set[int] = set()
        if self.reject_extra and not all(map(self.known.issuperset, records)):
            bad.update(i for i, row in enumerate(records) if not self.known.issuperset(row))
        try:  # every field present: rows to columns in two C-level passes
            values = dict(zip(self.names, zip(*map(self.getter, records), strict=True), strict=True))
        except KeyError:  # a field left out (null if optional, else an error): field by field
            values = {name: [row.get(name, _MISSING) for row in records] for name in self.names}
        for name, check in self.checks:
            bad.update(check(values[name]))
        if bad:
            raise self._errors(records, sorted(bad))
        return Columns({c["name"]: _as_logged(values[c["name"]], c) for c in self.contract["columns"]}, len(records))

    def _errors(self, records: list[dict], rows: list[int]) -> ValidationError:
        details: list[Any] = []
        for index in rows:
            try:
                self.record_model.model_validate(records[index])
            except ValidationError as exc:
                details += [{"type": e["type"], "loc": ("root", index, *e["loc"]), "input": e.get("input"),
                             "ctx": e.get("ctx") or {}} for e in exc.errors()]
            else:  # stricter than the record model (a guard: the unit tests keep the two in step)
                details.append({"type": "value_error", "loc": ("root", index),
                                "input": records[index], "ctx": {"error": "the record breaks the contract"}})
        return ValidationError.from_exception_data("AnnotatedIODescriptor", details)


def _as_logged(column: Any, spec: dict) -> list:
    """Missing values as None; numbers as floats (what the record model gives the log today)."""
    if spec["type"] == "number":
        if set(map(type, column)) == {float}:
            return list(column)
        return [None if v is None or v is _MISSING else float(v) for v in column]
    if _MISSING in column:
        return [None if v is _MISSING else v for v in column]
    return list(column)


def _column_check(column: dict) -> Any:
    """A function: a column's raw values -> the indices of the rows that break the contract."""
    kind = column["type"]
    optional = column["nullable"] or not column["required"]
    allowed = frozenset(column["isin"]) if column.get("isin") is not None else None
    forbidden = frozenset(column.get("notin") or ())
    low = [(column[k], k == "ge") for k in ("ge", "gt") if column.get(k) is not None]
    high = [(column[k], k == "le") for k in ("le", "lt") if column.get(k) is not None]
    pattern = re.compile(strict_pattern(column["pattern"])) if column.get("pattern") is not None else None
    min_length, max_length = column.get("min_length"), column.get("max_length")
    if kind == "datetime":
        from pydantic import TypeAdapter

        adapter = TypeAdapter(Annotated[datetime, Field(strict=True)])

    def is_type(value: Any) -> bool:
        kind_of = type(value)
        if kind == "integer":
            return kind_of is int
        if kind == "number":
            return (kind_of is float or kind_of is int) and -_LARGEST <= value <= _LARGEST  # NaN fails too
        if kind == "boolean":
            return kind_of is bool
        return kind_of is str

    def in_bounds(value: Any) -> bool:
        return (all(value >= b if inclusive else value > b for b, inclusive in low)
                and all(value <= b if inclusive else value < b for b, inclusive in high))

    def good(value: Any) -> bool:
        if value is None or value is _MISSING:
            return optional
        if not is_type(value):
            return False
        if allowed is not None and value not in allowed:
            return False
        if value in forbidden or ((low or high) and not in_bounds(value)):
            return False
        if kind == "string":
            if pattern is not None and pattern.match(value) is None:
                return False
            if (min_length is not None and len(value) < min_length) or (
                    max_length is not None and len(value) > max_length):
                return False
        if kind == "datetime":
            try:
                adapter.validate_json(json.dumps(value))
            except ValidationError:
                return False
        return True

    def fast_path(values: Any) -> bool:
        """True when the whole column (nulls left out) is good, tested with C-level builtins: the usual case."""
        kinds = set(map(type, values))
        if forbidden:
            return False
        if kind in ("integer", "number"):
            if not kinds <= ({int} if kind == "integer" else {int, float}):
                return False
            if kind == "number" and not _finite_sum(values):
                return False  # a NaN, an infinity, or numbers too large for float64 (their sum overflows)
            if allowed is not None:
                return allowed.issuperset(values)
            return not (low or high) or (in_bounds(min(values)) and in_bounds(max(values)))
        if kind == "string" and kinds == {str} and min_length is None and max_length is None:
            if allowed is not None and not allowed.issuperset(values):
                return False
            return pattern is None or all(map(pattern.match, values))
        if kind == "boolean":
            return kinds == {bool} and (allowed is None or allowed.issuperset(values))
        return False

    def failing(values: Any) -> list[int]:
        has_null = None in values or _MISSING in values
        present = [v for v in values if v is not None and v is not _MISSING] if has_null else values
        if (optional or not has_null) and (not present or fast_path(present)):
            return []
        return [i for i, value in enumerate(values) if not good(value)]

    return failing


def _finite_sum(values: Any) -> bool:
    try:
        return math.isfinite(sum(values))
    except OverflowError:  # an integer too large for a float
        return False


def to_frame_columns(columns: Columns, contract: dict) -> pd.DataFrame:
    """Checked columns as the frame the model was trained on: contract column order and dtypes."""
    data = {}
    for column in contract["columns"]:
        name, kind = column["name"], column["type"]
        values = columns.values[name]
        if kind == "number":
            data[name] = np.array(values, dtype="float64")  # None -> NaN
        elif kind == "integer":
            has_null = None in values
            data[name] = np.array(values, dtype="float64" if has_null else "int64")
        elif kind == "datetime":
            data[name] = pd.to_datetime(pd.Series(values, dtype=object))
        elif kind == "boolean":
            data[name] = pd.array(values, dtype="boolean") if None in values else np.array(values, dtype=bool)
        else:
            # Missing strings as NaN, as pandas reads them from the training CSV or Parquet.
            data[name] = np.array([np.nan if v is None else v for v in values] if None in values else values,
                                  dtype=object)
    # The dict is in contract order already; passing ``columns=`` too made pandas reindex (half the cost).
    return pd.DataFrame(data, copy=False)
