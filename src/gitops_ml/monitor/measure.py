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
    calibrated: bool = False  # the threshold came from the version's calibration, not a fixed default

    @property
    def past(self) -> float:
        """How far the score is past its threshold, in the direction of drift (negative: short of it)."""
        return self.threshold - self.score if is_p_value(self.method) else self.score - self.threshold

    def as_dict(self) -> dict:
        return {**asdict(self), "past": self.past}


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


def is_p_value(method: str) -> bool:
    # Evidently names p-value tests "... p_value"; for them a small score means drift.
    return "p_value" in method.lower()


def as_category(frame: pd.DataFrame, kinds: dict[str, str]) -> pd.DataFrame:
    """Categorical columns as strings with one spelling for missing, so both sides compare alike."""
    frame = frame.copy()
    for column, kind in kinds.items():
        if kind == "categorical":
            frame[column] = frame[column].astype("string").fillna("(missing)").astype(str)
    return frame


def measure(reference: pd.DataFrame, current: pd.DataFrame, features: list[str], config: Drift,
            prediction_kind: str | None, calibrated: dict[str, tuple[str, float]] | None = None) -> Measurement:
    """Run Evidently's data drift preset on the features, and a value drift on the prediction.

    ``calibrated`` maps a column (or ``prediction``) to the stat test and threshold its calibration
    chose; Evidently runs that test with that threshold, so its report shows the same verdicts.
    """
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
    calibrated = calibrated or {}
    own = {c: calibrated[c] for c in features if c in calibrated}
    preset = DataDriftPreset(
        columns=features, drift_share=config.retrain_drift_share,
        num_method=config.num_method or None, cat_method=config.cat_method or None, threshold=config.threshold,
        per_column_method={c: m for c, (m, _) in own.items()} or None,
        per_column_threshold={c: t for c, (_, t) in own.items()} or None,
    )
    metrics: list = [preset]
    if prediction_kind:
        method = (config.num_method if prediction_kind == "numerical" else config.cat_method) or None
        threshold = config.threshold
        if PREDICTION in calibrated:
            method, threshold = calibrated[PREDICTION]
        metrics.append(ValueDrift(column=PREDICTION, method=method, threshold=threshold))
    snapshot = Report(metrics).run(
        Dataset.from_pandas(as_category(current[columns], kinds), data_definition=definition),
        Dataset.from_pandas(as_category(reference[columns], kinds), data_definition=definition),
    )
    names = {c: _display_name(m, kinds[c]) for c, (m, _) in calibrated.items() if c in kinds}
    results = _value_drifts(json.loads(snapshot.json()), kinds, names)
    return Measurement(
        features=[results[c] for c in features if c in results],
        prediction=results.get(PREDICTION),
        snapshot=snapshot,
    )


def _display_name(method: str, kind: str) -> str:
    """Evidently's display name of a stat test ("K-S p_value"): the snapshot names a chosen test by its key."""
    from evidently.legacy.calculations.stattests import get_stattest

    probe = pd.Series([0.0, 1.0]) if kind == "numerical" else pd.Series(["a", "b"])
    return get_stattest(probe, probe, "num" if kind == "numerical" else "cat", method).display_name


def _value_drifts(document: dict, kinds: dict[str, str], calibrated: dict[str, str]) -> dict[str, ColumnDrift]:
    """Each ``ValueDrift`` metric of the snapshot as a typed result (the last one per column wins).

    ``calibrated`` maps a calibrated column to its test's display name.
    """
    found = {}
    for metric in document.get("metrics", []):
        config = metric.get("config", {})
        if not str(config.get("type", "")).endswith(":ValueDrift"):
            continue
        column = config["column"]
        method = calibrated.get(column) or str(config.get("method", ""))
        threshold, score = float(config.get("threshold")), float(metric["value"])
        drifted = score < threshold if is_p_value(method) else score >= threshold
        found[column] = ColumnDrift(column, kinds.get(column, ""), method, threshold, score, drifted,
                                    column in calibrated)
    return found


def quick_scores(reference: pd.DataFrame, current: pd.DataFrame, features: list[str],
                 config: Drift, calibrated: dict[str, tuple[str, float]] | None = None) -> list[ColumnDrift]:
    """The same Evidently stat tests the report runs, without rendering it: for calibration loops.

    ``calibrated`` as for ``measure``: a column's calibrated test and threshold.

    Evidently drops missing numbers before a numeric test; categories keep them as a value.
    """
    from evidently.legacy.calculations.stattests import get_stattest

    kinds = column_kinds(reference, features)
    ref, cur = as_category(reference[features], kinds), as_category(current[features], kinds)
    found = []
    for column in features:
        kind = "num" if kinds[column] == "numerical" else "cat"
        left, right = ref[column], cur[column]
        if kind == "num":
            left, right = left.dropna(), right.dropna()
        method = (config.num_method if kind == "num" else config.cat_method) or None
        threshold = config.threshold
        if calibrated and column in calibrated:
            method, threshold = calibrated[column]
        test = get_stattest(left, right, kind, method)
        outcome = test(left, right, kind, threshold)
        found.append(ColumnDrift(column, kinds[column], test.display_name, float(outcome.actual_threshold),
                                 float(outcome.drift_score), bool(outcome.drifted),
                                 bool(calibrated and column in calibrated)))
    return found
