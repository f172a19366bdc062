"""``schema infer``: a starting pandera DataFrameModel from a team's own data, for a person to review."""

from __future__ import annotations

import keyword
import re
from pathlib import Path

import pandas as pd

CATEGORY_LIMIT = 20  # a text column with at most this many values becomes an `isin` check


def _identifier(column: str) -> str:
    name = re.sub(r"\W+", "_", column).strip("_").lower() or "column"
    if name[0].isdigit() or keyword.iskeyword(name):
        name = f"col_{name}"
    return name


def _field(series: pd.Series) -> tuple[str, list[str]]:
    """The annotation type and the Field arguments for one column."""
    args = []
    if series.isna().any():
        args.append("nullable=True")
    values = series.dropna()
    if pd.api.types.is_bool_dtype(series):
        return "bool", args
    if pd.api.types.is_integer_dtype(series):
        kind = "int"
    elif pd.api.types.is_numeric_dtype(series):
        kind = "float"
    else:
        kind = "str"
    if kind in {"int", "float"} and len(values):
        low, high = float(values.min()), float(values.max())
        # Loosen the sample's bounds: production will see values a little past them.
        if low >= 0:
            args.append("ge=0")
        span = high - low or abs(high) or 1.0
        args.append(f"le={_round(high + span * 0.5, kind)}")
    if kind == "str":
        distinct = sorted(values.astype(str).unique())
        if 0 < len(distinct) <= CATEGORY_LIMIT:
            args.append(f"isin={distinct!r}")
    return kind, args


def _round(value: float, kind: str) -> str:
    return str(int(round(value))) if kind == "int" else f"{value:.6g}"


def infer_module(frame: pd.DataFrame, target: str, class_name: str = "DataSchema") -> str:
    """Python source of a DataFrameModel whose fields mirror the frame's columns."""
    if target not in frame.columns:
        raise KeyError(target)
    lines = [
        f'"""Data contract inferred by `gitops-ml schema infer` from {len(frame)} rows: review every bound."""',
        "",
        "import pandera.pandas as pa",
        "from pandera.typing import Series",
        "",
        "",
        f"class {class_name}(pa.DataFrameModel):",
        f'    """One row per example; `{target}` is the target."""',
        "",
    ]
    for column in frame.columns:
        kind, args = _field(frame[column])
        name = _identifier(str(column))
        if name != column:
            args.append(f"alias={str(column)!r}")
        lines.append(f"    {name}: Series[{kind}] = pa.Field({', '.join(args)})")
    lines += ["", "    class Config:", "        strict = True", "        coerce = True", ""]
    return "\n".join(lines)


def write_module(frame: pd.DataFrame, target: str, output: Path, class_name: str = "DataSchema") -> Path:
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(infer_module(frame, target, class_name), encoding="utf-8")
    return output
