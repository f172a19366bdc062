"""Metrics by group: the primary metric and the positive-prediction rate in each group of each slice
column, the gaps between groups, and the gates on them.

Groups come from ``[tool.gitops-ml.slices]``: a category column's values (missing values are a group
of their own), a numeric column's bins. A group with fewer than ``min_rows`` rows, or whose metric
is undefined (one class only, for AUC), is kept in the report as too small to judge and left out of
the gates and the gaps.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from . import tracking
from .config import Slices, Spec
from .metrics import higher_is_better

MISSING = "(missing)"


@dataclass(frozen=True)
class Group:
    column: str
    value: str
    rows: int
    metric: float | None
    """The primary metric on the group's rows; None when it is undefined there."""
    positive_rate: float | None = None
    """Binary classification: the share of the group's rows predicted positive."""
    judged: bool = True
    note: str = ""
    """Why a group is not judged: too few rows, or the metric undefined on them."""


@dataclass(frozen=True)
class ColumnSlices:
    column: str
    groups: list[Group]

    @property
    def judged(self) -> list[Group]:
        return [g for g in self.groups if g.judged]

    @property
    def too_small(self) -> list[Group]:
        return [g for g in self.groups if not g.judged]

    def best_and_worst(self, metric: str) -> tuple[Group, Group] | None:
        judged = self.judged
        if not judged:
            return None
        ordered = sorted(judged, key=lambda g: g.metric, reverse=higher_is_better(metric))
        return ordered[0], ordered[-1]

    @property
    def gap(self) -> float | None:
        """Best minus worst judged group's metric (absolute); None below two judged groups."""
        values = [g.metric for g in self.judged]
        return max(values) - min(values) if len(values) >= 2 else None

    @property
    def parity_difference(self) -> float | None:
        """Demographic parity difference: highest minus lowest positive-prediction rate of judged groups."""
        rates = [g.positive_rate for g in self.judged if g.positive_rate is not None]
        return max(rates) - min(rates) if len(rates) >= 2 else None


@dataclass
class SliceReport:
    metric: str
    min_rows: int
    columns: list[ColumnSlices] = field(default_factory=list)

    def column(self, name: str) -> ColumnSlices | None:
        return next((c for c in self.columns if c.column == name), None)

    def as_dict(self) -> dict:
        return {
            "metric": self.metric,
            "min_rows": self.min_rows,
            "columns": [
                {
                    "column": c.column,
                    "gap": c.gap,
                    "parity_difference": c.parity_difference,
                    "groups": [asdict(g) for g in c.groups],
                }
                for c in self.columns
            ],
        }

    @classmethod
    def from_dict(cls, data: dict) -> SliceReport:
        """Read back what ``as_dict`` wrote (as recorded on a model version)."""
        return cls(
            metric=data["metric"],
            min_rows=int(data["min_rows"]),
            columns=[
                ColumnSlices(c["column"], [Group(**g) for g in c.get("groups", [])]) for c in data.get("columns", [])
            ],
        )


def recorded(version: tracking.Version) -> dict | None:
    """What evaluate recorded per group on ``version``: ``candidate`` and ``baseline`` reports (as
    dicts), ``against`` and ``baseline_version``; None when it recorded no groups."""
    try:
        found = json.loads(version.tags.get(tracking.TAG_SLICES) or "null")
    except json.JSONDecodeError:
        return None
    return found if isinstance(found, dict) and found.get("candidate") else None


def group_labels(frame: pd.DataFrame, column: str, config: Slices) -> pd.Series:
    """Each row's group in ``column``: its bin for a numeric column, its value otherwise, as text."""
    values = frame[column]
    edges = config.bins.get(column)
    if edges:
        numbers = pd.to_numeric(values, errors="coerce")
        binned = pd.cut(numbers, [-math.inf, *edges, math.inf], right=False, labels=bin_labels(edges))
        return binned.astype("string").fillna(MISSING).astype(str)
    return values.astype("string").fillna(MISSING).astype(str)


def bin_labels(edges: list[float]) -> list[str]:
    """The group names of a numeric column's bins, lowest first."""
    labels = [f"< {_edge(edges[0])}"]
    labels += [f"{_edge(lo)} to < {_edge(hi)}" for lo, hi in zip(edges, edges[1:], strict=False)]
    return [*labels, f">= {_edge(edges[-1])}"]


def _order(value: str, column: str, config: Slices) -> tuple:
    """Bins lowest first, categories alphabetically, the missing group last."""
    if value == MISSING:
        return (1, 0, "")
    edges = config.bins.get(column)
    labels = bin_labels(edges) if edges else []
    return (0, labels.index(value) if value in labels else 0, value)


def _edge(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def group_shares(frame: pd.DataFrame, column: str, config: Slices) -> dict[str, float]:
    """Each group's share of the rows (drift compares these between training and traffic)."""
    if frame.empty:
        return {}
    counts = group_labels(frame, column, config).value_counts(normalize=True)
    return {str(k): float(counts[k]) for k in sorted(counts.index, key=lambda v: _order(str(v), column, config))}


def by_group(spec: Spec, model, features: pd.DataFrame, target: pd.Series) -> SliceReport | None:
    """The primary metric (and, for binary classifiers, the positive-prediction rate) per group of
    every slice column, on held-out rows; None when the spec slices by nothing.

    fairlearn's ``MetricFrame`` splits the rows by group and applies scikit-learn's metrics to each.
    """
    config = spec.slices
    if not config.columns:
        return None
    from fairlearn.metrics import MetricFrame, count, selection_rate

    truth = target.to_numpy()
    predicted = np.asarray(model.predict(features))
    metrics = {"rows": count, "metric": functools.partial(group_metric, spec.metric)}
    params: dict = {}
    if spec.task == "classification":
        classes = list(model.classes_)
        probabilities = model.predict_proba(features)
        scores = probabilities[:, 1] if len(classes) == 2 else probabilities
        metrics["metric"] = functools.partial(group_metric, spec.metric, classes=classes)
        params["metric"] = {"scores": scores}  # split by group with the rows
        if len(classes) == 2:  # demographic parity is defined for a positive class
            metrics["positive_rate"] = functools.partial(selection_rate, pos_label=classes[1])
    report = SliceReport(metric=spec.metric, min_rows=config.min_rows)
    for column in config.columns:
        frame = MetricFrame(
            metrics=metrics,
            y_true=truth,
            y_pred=predicted,
            sensitive_features=group_labels(features, column, config).rename(column).to_numpy(),
            sample_params=params or None,
        ).by_group
        order = sorted(frame.index, key=lambda value: _order(str(value), column, config))
        groups = [_group(spec, column, str(value), frame.loc[value]) for value in order]
        report.columns.append(ColumnSlices(column, groups))
    return report


def _group(spec: Spec, column: str, value: str, row: pd.Series) -> Group:
    rows = int(row["rows"])
    metric = _number(row["metric"])
    rate = _number(row["positive_rate"]) if "positive_rate" in row else None
    if rows < spec.slices.min_rows:
        note = f"too small to judge ({rows} rows < min_rows {spec.slices.min_rows})"
        return Group(column, value, rows, metric, rate, judged=False, note=note)
    if metric is None:
        note = f"too small to judge ({spec.metric} undefined: one class only)"
        return Group(column, value, rows, None, rate, judged=False, note=note)
    return Group(column, value, rows, metric, rate)


def _number(value) -> float | None:
    number = float(value)
    return None if math.isnan(number) else number


def group_metric(metric: str, truth, predicted, scores=None, classes=None) -> float:
    """One metric on one group's rows with scikit-learn, as ``metrics.score`` computes it over all
    rows; NaN when it is undefined there (AUC on one class)."""
    from sklearn import metrics as skm

    truth, predicted = np.asarray(truth), np.asarray(predicted)
    if len(truth) == 0:
        return math.nan
    if metric == "rmse":
        return float(np.sqrt(skm.mean_squared_error(truth, predicted)))
    if metric == "mae":
        return float(skm.mean_absolute_error(truth, predicted))
    if metric == "r2":
        return float(skm.r2_score(truth, predicted)) if len(truth) > 1 else math.nan
    if metric == "accuracy":
        return float(skm.accuracy_score(truth, predicted))
    labels = list(classes)
    binary = len(labels) == 2
    if metric == "roc_auc":
        if len(np.unique(truth)) < 2:
            return math.nan
        if binary:
            return float(skm.roc_auc_score(truth == labels[1], scores))
        return float(skm.roc_auc_score(truth, scores, multi_class="ovr", labels=labels))
    if metric == "log_loss":
        probabilities = np.column_stack([1 - scores, scores]) if binary else scores
        return float(skm.log_loss(truth, probabilities, labels=labels))
    function = {"f1": skm.f1_score, "precision": skm.precision_score, "recall": skm.recall_score}[metric]
    options = {"average": "binary", "pos_label": labels[1]} if binary else {"average": "macro"}
    return float(function(truth, predicted, zero_division=0, **options))


# -- gates -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SliceGate:
    """What a slice gate checks, in the shape evaluate's gates take."""

    name: str
    metric: str
    threshold: float
    value: float
    passed: bool
    kind: str  # "group-floor", "group-ceiling", "group-gap" or "parity"


def gates(config: Slices, report: SliceReport | None) -> tuple[list[SliceGate], list[str]]:
    """The configured slice gates per column, and notices for the columns a gate cannot judge."""
    found: list[SliceGate] = []
    notices: list[str] = []
    if report is None:
        return found, notices
    metric, higher = report.metric, higher_is_better(report.metric)
    for column in report.columns:
        judged = column.judged
        if column.too_small:
            names = ", ".join(f"{g.value} ({g.rows} rows)" for g in column.too_small)
            notices.append(f"slice {column.column}: too small to judge, left out of the slice gates: {names}")
        if config.min_metric is not None and not judged:
            notices.append(f"slice {column.column}: no group large enough to judge; the floor in every group "
                           "does not apply")  # fmt: skip
        if config.min_metric is not None and judged:
            _, worst = column.best_and_worst(metric)
            passed = worst.metric >= config.min_metric if higher else worst.metric <= config.min_metric
            sign = ">=" if higher else "<="
            found.append(SliceGate(f"{metric} {sign} {config.min_metric} in every {column.column} group "
                                   f"(worst: {worst.value})", metric, config.min_metric, worst.metric, passed,
                                   "group-floor" if higher else "group-ceiling"))  # fmt: skip
        wants_two = config.max_gap is not None or config.max_parity_difference is not None
        if wants_two and len(judged) < 2:
            notices.append(f"slice {column.column}: {len(judged)} group(s) large enough to judge; "
                           "the gap gates need two")  # fmt: skip
            continue
        if config.max_gap is not None:
            best, worst = column.best_and_worst(metric)
            found.append(SliceGate(f"{metric} gap <= {config.max_gap} across {column.column} "
                                   f"({best.value} vs {worst.value})", metric, config.max_gap, column.gap,
                                   column.gap <= config.max_gap, "group-gap"))  # fmt: skip
        if config.max_parity_difference is not None and column.column in (config.parity_columns or [column.column]):
            difference = column.parity_difference
            if difference is None:
                notices.append(f"slice {column.column}: no positive-prediction rates (not a binary classifier); "
                               "the parity gate does not apply")  # fmt: skip
                continue
            found.append(SliceGate(f"positive-rate gap <= {config.max_parity_difference} across {column.column}",
                                   "demographic_parity_difference", config.max_parity_difference, difference,
                                   difference <= config.max_parity_difference, "parity"))  # fmt: skip
    return found, notices


# -- tables every reader shares (the command line, the step summary, the card, the pull request) ------
def table(report: SliceReport, baseline: SliceReport | None = None) -> tuple[list[str], list[tuple]]:
    """Headers and rows of the per-group table; numbers as floats (None: not computed)."""
    headers = ["column", "group", "rows", report.metric]
    binary = any(g.positive_rate is not None for c in report.columns for g in c.groups)
    if baseline is not None:
        headers.append(f"{report.metric} now")
    if binary:
        headers.append("positive rate")
    headers.append("judged")
    rows = []
    for column in report.columns:
        before = baseline.column(column.column) if baseline is not None else None
        earlier = {g.value: g for g in before.groups} if before is not None else {}
        for group in column.groups:
            row: list = [column.column, group.value, group.rows, group.metric]
            if baseline is not None:
                row.append(earlier[group.value].metric if group.value in earlier else None)
            if binary:
                row.append(group.positive_rate)
            row.append("yes" if group.judged else group.note)
            rows.append(tuple(row))
    return headers, rows


def gap_rows(report: SliceReport) -> list[tuple]:
    """Per column: best and worst judged group, the metric's gap and the positive-rate gap."""
    rows = []
    for column in report.columns:
        ends = column.best_and_worst(report.metric)
        best, worst = (ends[0].value, ends[1].value) if ends else ("", "")
        rows.append((column.column, best, worst, column.gap, column.parity_difference, len(column.too_small)))
    return rows


GAP_HEADERS = ["column", "best group", "worst group", "metric gap", "positive-rate gap", "too small to judge"]


def number(value: object) -> str:
    """A table cell for Markdown: four decimals, '—' for nothing."""
    if isinstance(value, float):
        return f"{value:.4f}"
    return "—" if value is None else str(value)


# -- drift: who the traffic comes from --------------------------------------------------------------
@dataclass(frozen=True)
class ShareShift:
    """One group's share of the rows at training and in current traffic."""

    column: str
    group: str
    reference: float
    current: float
    threshold: float

    @property
    def change(self) -> float:
        return self.current - self.reference

    @property
    def moved(self) -> bool:
        # A hair under the threshold counts: 0.05 -> 0.15 is a move of 0.1 in decimal, 0.09999... in binary.
        return abs(self.change) >= self.threshold - 1e-9

    def as_dict(self) -> dict:
        return {**asdict(self), "change": self.change, "moved": self.moved}


def share_shifts(config: Slices, reference: pd.DataFrame, current: pd.DataFrame) -> list[ShareShift]:
    """Per slice column and group, the share of training rows against the share of current rows.

    A group that grew from 5 % to 40 % of traffic matters even when every feature's distribution
    passes its drift test: the overall metric then averages over another mix of groups.
    """
    found = []
    for column in config.columns:
        if column not in reference.columns or column not in current.columns:
            continue
        before, now = group_shares(reference, column, config), group_shares(current, column, config)
        names = sorted(set(before) | set(now), key=lambda value: _order(value, column, config))
        found += [ShareShift(column, name, before.get(name, 0.0), now.get(name, 0.0), config.share_shift)
                  for name in names]  # fmt: skip
    return found
