"""Evidently 0.7: per-feature drift with a test suited to each column's type, and prediction drift."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from ..config import Drift

PREDICTION = "prediction"


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    kind: str  # "numerical" or "categorical"
    method: str
    threshold: float
    score: float
    drifted: bool

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Measurement:
    features: list[ColumnDrift]
    prediction: ColumnDrift | None
    snapshot: Any  # the Evidently snapshot, for the HTML report

    @property
    def drifted(self) -> list[ColumnDrift]:
        return [f for f in self.features if f.drifted]

    @property
    def share(self) -> float:
        return len(self.drifted) / len(self.features) if self.features else 0.0


def column_kinds(reference: pd.DataFrame, columns: list[str]) -> dict[str, str]:
    """Numbers are compared as distributions; everything else (text, booleans) as categories."""
    kinds = {}
    for column in columns:
        series = reference[column]
        numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
        kinds[column] = "numerical" if numeric else "categorical"
    return kinds


def _is_p_value(method: str) -> bool:
    # Evidently names p-value tests "... p_value"; for them a small score means drift.
    return "p_value" in method.lower()


def _as_category(frame: pd.DataFrame, kinds: dict[str, str]) -> pd.DataFrame:
    """Categorical columns as strings with one spelling for missing, so both sides compare alike."""
    frame = frame.copy()
    for column, kind in kinds.items():
        if kind == "categorical":
            frame[column] = frame[column].astype("string").fillna("(missing)").astype(str)
    return frame


def measure(reference: pd.DataFrame, current: pd.DataFrame, features: list[str], config: Drift,
            prediction_kind: str | None) -> Measurement:
    """Run Evidently's data drift preset on the features, and a value drift on the prediction."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    kinds = column_kinds(reference, features)
    if prediction_kind:
        kinds[PREDICTION] = prediction_kind
    columns = list(kinds)
    definition = DataDefinition(
        numerical_columns=[c for c, k in kinds.items() if k == "numerical"],
        categorical_columns=[c for c, k in kinds.items() if k == "categorical"],
    )
    preset = DataDriftPreset(
        columns=features, drift_share=config.retrain_drift_share,
        num_method=config.num_method or None, cat_method=config.cat_method or None, threshold=config.threshold,
    )
    metrics: list = [preset]
    if prediction_kind:
        method = config.num_method if prediction_kind == "numerical" else config.cat_method
        metrics.append(ValueDrift(column=PREDICTION, method=method or None, threshold=config.threshold))
    snapshot = Report(metrics).run(
        Dataset.from_pandas(_as_category(current[columns], kinds), data_definition=definition),
        Dataset.from_pandas(_as_category(reference[columns], kinds), data_definition=definition),
    )
    results = _value_drifts(json.loads(snapshot.json()), kinds)
    return Measurement(
        features=[results[c] for c in features if c in results],
        prediction=results.get(PREDICTION),
        snapshot=snapshot,
    )


def _value_drifts(document: dict, kinds: dict[str, str]) -> dict[str, ColumnDrift]:
    """Each ``ValueDrift`` metric of the snapshot as a typed result (the last one per column wins)."""
    found = {}
    for metric in document.get("metrics", []):
        config = metric.get("config", {})
        if not str(config.get("type", "")).endswith(":ValueDrift"):
            continue
        column, method = config["column"], str(config.get("method", ""))
        threshold, score = float(config.get("threshold")), float(metric["value"])
        drifted = score < threshold if _is_p_value(method) else score >= threshold
        found[column] = ColumnDrift(column, kinds.get(column, ""), method, threshold, score, drifted)
    return found


def quick_scores(reference: pd.DataFrame, current: pd.DataFrame, features: list[str],
                 config: Drift) -> list[ColumnDrift]:
    """The same Evidently stat tests the report runs, without rendering it: for calibration loops.

    Evidently drops missing numbers before a numeric test; categories keep them as a value.
    """
    from evidently.legacy.calculations.stattests import get_stattest

    kinds = column_kinds(reference, features)
    ref, cur = _as_category(reference[features], kinds), _as_category(current[features], kinds)
    found = []
    for column in features:
        kind = "num" if kinds[column] == "numerical" else "cat"
        left, right = ref[column], cur[column]
        if kind == "num":
            left, right = left.dropna(), right.dropna()
        method = (config.num_method if kind == "num" else config.cat_method) or None
        test = get_stattest(left, right, kind, method)
        outcome = test(left, right, kind, config.threshold)
        found.append(ColumnDrift(column, kinds[column], test.display_name, float(outcome.actual_threshold),
                                 float(outcome.drift_score), bool(outcome.drifted)))
    return found
