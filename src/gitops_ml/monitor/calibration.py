"""Drift thresholds calibrated on a version's own training rows, at the batch sizes drift judges.

How much a drift score moves by chance depends on the data (how many distinct values, how heavy the
tails) and on the batch size, so one fixed cut-off (Evidently's 0.1) is either deaf or jumpy. Here the
version's training rows are split at random many times into a reference part and a "current" part of
the size drift will judge; every split is same-distribution by construction, so the scores it gives are
the null distribution of each column's score and of the prediction's.

Combination across columns: the **max-statistic**. Each column's null scores are put on a common scale
(``(score - median) / (q95 - median)``, oriented so that larger means more drift, p-values as
``-log(p)``); per split the largest
scaled score over all columns and the prediction is kept; the critical value ``c`` is the conformal
``ceil((1 - rate) * (R + 1))``-th of those R maxima. A same-distribution batch then flags *any* column
(or the prediction) with probability at most ``rate``, so no ``retrain`` can come from data drift or
prediction drift more often than that. Unlike Bonferroni it uses the correlation between columns (a
table of ten near-copies is not ten chances), and it needs no tail far beyond what R splits show.

A column **constant in the training rows** has no null spread (every split scores 0) yet a batch can hold
a value the training rows never showed, by chance alone: when the one non-zero row of 1,797 is among the
held-out rows, a 270-row batch holds it about one time in five. Such a column is judged by how many rows
carry another value (Evidently's Jensen-Shannon on values, a function of that share), and its threshold
comes from exchangeability, not from splits: if ``K >= k`` of the ``n + m`` rows differ, the chance that
all of them fell in the ``m``-row batch is at most ``C(m, k) / C(n + m, k)``. Each constant column gets
``rate / columns`` of the budget and the max-statistic the rest, so the union stays within ``rate``.

Evidently stays the measuring library: the scores are its own stat tests (the same function it runs),
and drift passes the calibrated thresholds and the test each was calibrated for back into its report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import BaseModel

from ..config import Drift
from .fast_scores import (
    CodedColumn,
    fast_form,
    jensen_shannon,
    ks_asymptotic,
    ks_asymptotic_statistic,
    ks_statistic,
    ks_threshold,
    normed_wasserstein,
    shifted_wasserstein,
)
from .measure import PREDICTION, as_category, column_kinds, is_p_value

CALIBRATION_ARTIFACT = "drift/calibration.json"
MIN_CALIBRATION_ROWS = 20  # below this a split's "current" part says nothing about any batch
POWER_TARGET = 0.9  # a shift counts as detectable when it is caught this often
POWER_SPLITS = 50
POWER_BINS = 1000  # power is measured on at most this many distinct values per column (``_coarse``)
MEAN_SHIFTS_SD = (0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
SHARE_SHIFTS = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)


class ColumnThreshold(BaseModel):
    column: str
    kind: str  # "numerical" or "categorical"
    method: str  # Evidently's stat test name, passed back to it at drift time
    method_display: str
    p_value: bool  # True: a small score means drift
    threshold: float
    null_median: float
    null_q95: float
    null_q99: float
    null_max: float  # the most extreme null score (the smallest for p-values)
    detectable: float | None = None  # smallest shift caught POWER_TARGET of the time; None: none in the grid
    detectable_unit: str = ""  # "sd" (mean shift in standard deviations) or "share" (rows moved to a category)
    constant_rows: int | None = None  # constant in the training rows: batch rows with another value that count

    def passes(self, score: float) -> bool:
        return score < self.threshold if self.p_value else score >= self.threshold


class SizeCalibration(BaseModel):
    current_rows: int
    requested_rows: int  # the size asked for; larger than current_rows when the reference was too small
    reference_rows: int
    splits: int
    critical: float  # the max-statistic's critical value on the scaled scores
    conservative: bool  # True: thresholds raised to at least Evidently's defaults (too little data)
    note: str = ""
    columns: list[ColumnThreshold]
    prediction: ColumnThreshold | None = None

    def by_column(self) -> dict[str, ColumnThreshold]:
        found = {c.column: c for c in self.columns}
        if self.prediction is not None:
            found[PREDICTION] = self.prediction
        return found


class Calibration(BaseModel):
    false_alarm_rate: float
    combination: str = "max-statistic"
    training_rows: int
    seed: int
    sizes: list[SizeCalibration]
    notes: list[str] = []

    def for_rows(self, rows: int) -> SizeCalibration | None:
        """Thresholds for a batch of ``rows``: the largest calibrated size not above it (a smaller batch
        is noisier, so its thresholds are the conservative side); the smallest if all are above."""
        if not self.sizes:
            return None
        fitting = [s for s in self.sizes if s.current_rows <= rows]
        return max(fitting, key=lambda s: s.current_rows) if fitting else min(self.sizes, key=lambda s: s.current_rows)


def calibration_sizes(config: Drift) -> list[int]:
    return sorted({config.min_rows, *config.calibration_sizes})


def calibrate(
    frame: pd.DataFrame,
    features: list[str],
    config: Drift,
    seed: int,
    prediction: pd.Series | None = None,
    prediction_kind: str | None = None,
) -> Calibration:
    """Null distributions of every feature's (and the prediction's) drift score, and thresholds from them."""
    data = frame[features].copy()
    kinds = column_kinds(data, features)
    if prediction is not None and prediction_kind:
        data[PREDICTION] = prediction.to_numpy()
        kinds[PREDICTION] = prediction_kind
    data = as_category(data, kinds).reset_index(drop=True)
    tests = {c: _stat_test(data[c], kinds[c], config) for c in kinds}
    for column in kinds:
        if _constant(data[column], kinds[column]):
            tests[column] = _constant_test(data[column], kinds[column])
    rng = np.random.default_rng(seed)
    sizes, notes = [], []
    for requested in calibration_sizes(config):
        size, note = _feasible_size(len(data), requested)
        if note:
            notes.append(note)
        if size is None or any(s.current_rows == size for s in sizes):
            continue
        sizes.append(_calibrate_size(data, kinds, tests, config, size, requested, rng))
    if not sizes:
        notes.append(
            f"{len(data)} training rows are too few to calibrate at all (at least "
            f"{2 * MIN_CALIBRATION_ROWS} needed): Evidently's fixed thresholds apply"
        )
    return Calibration(
        false_alarm_rate=config.false_alarm_rate, training_rows=len(data), seed=seed, sizes=sizes, notes=notes
    )


def _feasible_size(rows: int, requested: int) -> tuple[int | None, str]:
    """The current part may be at most half the rows: the reference part must be as large as a batch."""
    if requested <= rows // 2:
        return requested, ""
    fallback = rows // 2
    if fallback < MIN_CALIBRATION_ROWS:
        return None, f"cannot calibrate at {requested} rows: only {rows} training rows"
    return fallback, (
        f"only {rows} training rows: calibrated at {fallback} current rows instead of {requested} "
        "(noisier, so stricter) and never below Evidently's fixed thresholds"
    )


def _constant(series: pd.Series, kind: str) -> bool:
    values = series.dropna() if kind == "numerical" else series
    return len(values) > 0 and values.nunique() == 1


def new_value_rows(reference_rows: int, batch_rows: int, rate: float) -> int:
    """The fewest rows with a value absent from a constant reference that chance gives at most ``rate``.

    Exchangeability of the ``n`` reference and ``m`` batch rows: if ``K >= k`` rows carry another value, all
    of them land in the batch with probability ``C(m, K) / C(n + m, K) <= C(m, k) / C(n + m, k)``.
    """
    n, m = reference_rows, batch_rows
    chance, k = 1.0, 0
    while chance > rate:
        if k >= m:
            return m + 1  # never reachable at this rate: the column cannot be called drifted
        chance *= (m - k) / (n + m - k)
        k += 1
    return k


def js_of_share(share: float) -> float:
    """Jensen-Shannon distance (natural log) between a constant and a batch with ``share`` of other values."""
    if share <= 0:
        return 0.0
    p, q = np.array([1.0, 0.0]), np.array([1 - share, share])
    return float(jensen_shannon(p[None, :], q[None, :])[0])


def splits_needed(rate: float) -> int:
    """The conformal quantile needs ceil((1 - rate) * (R + 1)) <= R, that is R >= 1/rate - 1."""
    return math.ceil(1 / rate - 1)


def _calibrate_size(
    data: pd.DataFrame,
    kinds: dict[str, str],
    tests: dict,
    config: Drift,
    size: int,
    requested: int,
    rng: np.random.Generator,
) -> SizeCalibration:
    constant = [c for c in kinds if tests[c].constant]
    columns = [c for c in kinds if not tests[c].constant]
    # The budget: rate / columns for each constant column, the rest for the max-statistic (a union bound).
    each = config.false_alarm_rate / len(kinds)
    rate = config.false_alarm_rate - each * len(constant)
    splits = max(config.calibration_splits, splits_needed(rate))
    current = _current_rows(len(data), size, splits, rng)
    null = np.column_stack([tests[c].scores(current) for c in columns]) if columns else np.zeros((splits, 0))
    oriented = np.column_stack([_oriented(null[:, j], tests[c].p_value) for j, c in enumerate(columns)]) \
        if columns else null
    middle, spread = _scale(oriented)
    maxima = ((oriented - middle) / spread).max(axis=1) if columns else np.zeros(splits)
    critical = float(np.sort(maxima)[math.ceil((1 - rate) * (splits + 1)) - 1])
    conservative = size < requested
    power_rows = current[:POWER_SPLITS]
    found = [_constant_threshold(c, kinds[c], tests[c], len(data), size, each) for c in constant]
    for j, column in enumerate(columns):
        test = tests[column]
        cut = middle[j] + critical * spread[j]
        threshold = test.exact_cut(float(np.exp(-cut))) if test.p_value else float(np.nextafter(cut, np.inf))
        if conservative:
            threshold = min(threshold, test.default) if test.p_value else max(threshold, test.default)
        scores = null[:, j]
        calibrated = ColumnThreshold(
            column=column,
            kind=kinds[column],
            method=test.name,
            method_display=test.display,
            p_value=test.p_value,
            threshold=float(threshold),
            null_median=float(np.median(scores)),
            null_q95=float(np.quantile(scores, 0.05 if test.p_value else 0.95)),
            null_q99=float(np.quantile(scores, 0.01 if test.p_value else 0.99)),
            null_max=float(scores.min() if test.p_value else scores.max()),
        )
        found.append(_with_power(calibrated, test, power_rows, rng))
    note = (
        ""
        if not conservative
        else (
            f"reference too small for {requested}-row batches: thresholds of "
            f"{size}-row splits, never below Evidently's defaults"
        )
    )
    found.sort(key=lambda c: list(kinds).index(c.column))
    return SizeCalibration(
        current_rows=size,
        requested_rows=requested,
        reference_rows=len(data) - size,
        splits=splits,
        critical=critical,
        conservative=conservative,
        note=note,
        columns=[c for c in found if c.column != PREDICTION],
        prediction=next((c for c in found if c.column == PREDICTION), None),
    )


def _current_rows(rows: int, size: int, splits: int, rng: np.random.Generator) -> np.ndarray:
    """Each split's current part as row positions (one row per split); the rest is its reference."""
    return np.stack([rng.permutation(rows)[:size] for _ in range(splits)])


def _oriented(scores: np.ndarray, p_value: bool) -> np.ndarray:
    """Larger means more drift. P-values as ``-log(p)``: on their own scale a p-value's room is capped at
    ``median / (median - q05)`` (about 1.1), so the max-statistic's critical value sat at that cap and a
    column whose cap was lower could never be called drifted; ``-log(p)`` has a tail like a distance's."""
    return -np.log(np.maximum(scores, 1e-300)) if p_value else scores


def _scale(oriented: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column: the null median and the distance to the null 95th percentile (a robust spread).

    A column whose scores mostly do not move (a rare value reaches the split's current part in under 5 %
    of splits) has a 95th percentile at its median: its spread is then the distance to the 99th percentile,
    else to the largest null score, so one unusual row does not count as a multiple of a near-zero spread.
    """
    middle = np.median(oriented, axis=0)
    floor = np.maximum(np.abs(middle) * 1e-3, 1e-9)
    spread = np.zeros_like(middle)
    for q in (0.95, 0.99, 1.0):
        above = np.quantile(oriented, q, axis=0) - middle
        spread = np.where(spread > floor, spread, above)
    return middle, np.maximum(spread, floor)


def _constant_threshold(column: str, kind: str, test: _Test, reference_rows: int, size: int,
                        rate: float) -> ColumnThreshold:
    """A column constant in the training rows: called drifted when more batch rows carry another value than
    chance gives at ``rate`` (``new_value_rows``); the threshold is that share's Jensen-Shannon distance."""
    rows = new_value_rows(reference_rows, size, rate)
    threshold = js_of_share(rows / size) if rows <= size else float(np.sqrt(np.log(2))) + 1.0
    return ColumnThreshold(
        column=column, kind=kind, method=test.name, method_display=test.display, p_value=False,
        threshold=float(np.nextafter(threshold, -np.inf)), null_median=0.0, null_q95=0.0, null_q99=0.0,
        null_max=0.0, detectable=rows / size if rows <= size else None, detectable_unit="share",
        constant_rows=rows,
    )


class _Test:
    """One column's Evidently stat test, resolved once on the whole reference (as drift resolves it).

    Scores splits with the vectorised form when there is one (``fast_scores``), else with Evidently.
    """

    constant = False

    def __init__(self, stat_test, series: pd.Series, numeric: bool):
        self.stat_test, self.series, self.numeric = stat_test, series, numeric
        self.name, self.display = stat_test.name, stat_test.display_name
        self.default = float(stat_test.default_threshold)
        self.p_value = is_p_value(self.display)
        self.coded = CodedColumn(series, numeric) if fast_form(self.name, series, numeric) else None

    def evidently(self, reference: pd.Series, current: pd.Series) -> float:
        if self.numeric:  # Evidently drops missing numbers before a numeric test
            reference, current = reference.dropna(), current.dropna()
        kind = "num" if self.numeric else "cat"
        return float(self.stat_test(reference, current, kind, None).drift_score)

    def scores(self, current: np.ndarray) -> np.ndarray:
        if self.coded is None:
            return np.array([self.evidently(*self._pair(rows)) for rows in current])
        ref, cur = self.coded.counts(current)
        if self.name == "wasserstein":
            return normed_wasserstein(self.coded.values, ref, cur)
        if self.name == "ks":  # asymptotic p-values: the exact one is computed at the threshold (exact_cut)
            d, n1, n2 = ks_statistic(ref, cur)
            self.sizes = (int(np.median(n1)), int(np.median(n2)))
            return ks_asymptotic(d, n1, n2)
        return jensen_shannon(ref, cur)

    def exact_cut(self, p_value: float) -> float:
        """The threshold to hand Evidently for a cut found on this test's null scores."""
        if self.name != "ks" or self.coded is None:
            return p_value
        n1, n2 = self.sizes
        d = ks_asymptotic_statistic(p_value, n1, n2)
        return ks_threshold(
            n1, n2, d, lambda r, c: float(self.stat_test(pd.Series(r), pd.Series(c), "num", None).drift_score)
        )

    def _pair(self, rows: np.ndarray) -> tuple[pd.Series, pd.Series]:
        chosen = np.zeros(len(self.series), dtype=bool)
        chosen[rows] = True
        return self.series[~chosen], self.series[chosen]

    def shifted_scores(self, current: np.ndarray, shift: float, rng: np.random.Generator) -> np.ndarray:
        """Scores when the current part is shifted: numbers by ``shift`` standard deviations, categories by
        moving a ``shift`` share of the current rows to the reference's rarest category."""
        if self.coded is not None and self.numeric and self.name == "wasserstein":
            ref, cur = self.coded.counts(current)
            values, ref, cur = _coarse(self.coded.values, self.coded.total[:-1], ref, cur)
            return shifted_wasserstein(values, ref, cur, shift * float(self.series.std()))
        if self.coded is not None and not self.numeric:
            ref, cur = self.coded.counts(current)
            rarest = int(np.argmin(np.where(self.coded.total[:-1] > 0, self.coded.total[:-1], np.inf)))
            moved = rng.binomial(cur, shift)
            moved[:, rarest] = 0
            cur = cur - moved
            cur[:, rarest] += moved.sum(axis=1)
            return jensen_shannon(ref, cur)
        raise ValueError(f"no vectorised form of {self.name} for {self.series.name!r}")


def _coarse(values: np.ndarray, total: np.ndarray, ref: np.ndarray, cur: np.ndarray):
    """For power only: a column with more than POWER_BINS distinct values merged into POWER_BINS groups of
    about equal row counts, each at its rows' mean value (a shifted score over 20,000 distinct values cost
    most of a 20,000-row calibration; the detectable shift is read on a coarse grid of shifts anyway)."""
    if len(values) <= POWER_BINS:
        return values, ref, cur
    group = np.minimum((np.cumsum(total) - total) * POWER_BINS // max(int(total.sum()), 1), POWER_BINS - 1)
    starts = np.flatnonzero(np.r_[True, np.diff(group) > 0])
    weight = np.add.reduceat(total, starts)
    means = np.add.reduceat(total * values, starts) / np.maximum(weight, 1)
    return means, np.add.reduceat(ref, starts, axis=1), np.add.reduceat(cur, starts, axis=1)


# Evidently's default tests with a vectorised form, as its ``_get_default_stattest`` picks them: resolved
# here without importing Evidently (3 s or more of a `train` on the bundled example); checked against it in
# tests/test_calibration.py.
_FAST_DEFAULTS = {
    "wasserstein": ("Wasserstein distance (normed)", 0.1),
    "jensenshannon": ("Jensen-Shannon distance", 0.1),
}


class _Deferred:
    """Evidently's stat test by name, imported only when it is called (fast tests never are)."""

    def __init__(self, name: str, kind: str):
        self.name, self.kind = name, kind
        self.display_name, self.default_threshold = _FAST_DEFAULTS[name]

    def __call__(self, *args, **kwargs):
        from evidently.legacy.calculations.stattests import get_stattest

        return get_stattest(args[0], args[1], self.kind, self.name)(*args, **kwargs)


def default_method(values: pd.Series, numeric: bool) -> str | None:
    """Evidently's default test for a reference compared with itself, when it is one with a fast form."""
    if len(values) <= 1000:
        return None  # K-S, chi-square or z: resolved by Evidently itself
    if not numeric:
        return "jensenshannon"
    return "jensenshannon" if values.nunique() <= 5 else "wasserstein"


def _stat_test(series: pd.Series, kind: str, config: Drift) -> _Test:
    numeric = kind == "numerical"
    method = (config.num_method if numeric else config.cat_method) or None
    values = series.dropna() if numeric else series
    fast = method or default_method(values, numeric)
    if fast in _FAST_DEFAULTS and fast_form(fast, series, numeric):
        return _Test(_Deferred(fast, "num" if numeric else "cat"), series, numeric)
    from evidently.legacy.calculations.stattests import get_stattest

    return _Test(get_stattest(values, values, "num" if numeric else "cat", method), series, numeric)


def _constant_test(series: pd.Series, kind: str) -> _Test:
    """Evidently's Jensen-Shannon on values (a constant has one value, so no binning): its score is a function
    of the share of batch rows with another value, whatever those values are (a normed Wasserstein distance
    over a zero spread would make one row with a large value count like a whole shifted batch)."""
    numeric = kind == "numerical"
    test = _Test(_Deferred("jensenshannon", "num" if numeric else "cat"), series, numeric)
    test.constant = True
    return test


def _with_power(found: ColumnThreshold, test: _Test, current: np.ndarray, rng: np.random.Generator) -> ColumnThreshold:
    """The smallest shift of this column caught POWER_TARGET of the time at its calibrated threshold.

    Numbers: the current part's values moved by a multiple of the reference's standard deviation.
    Categories: a share of the current rows moved to the reference's rarest category.
    """
    numeric = found.kind == "numerical"
    if test.coded is None or (numeric and (test.name != "wasserstein" or not float(test.series.std()))):
        # Power is measured for the vectorised tests only (Evidently's own calls cost too much); a mean
        # shift of a number with a handful of values (compared as categories) is not a meaningful unit.
        return found
    shifts, unit = (MEAN_SHIFTS_SD, "sd") if numeric else (SHARE_SHIFTS, "share")
    for shift in shifts:
        scores = test.shifted_scores(current, shift, rng)
        caught = (scores < found.threshold) if found.p_value else (scores >= found.threshold)
        if caught.mean() >= POWER_TARGET:
            return found.model_copy(update={"detectable": shift, "detectable_unit": unit})
    return found.model_copy(update={"detectable_unit": unit})


def calibrate_rows(spec, frame: pd.DataFrame, model) -> Calibration:
    """Calibrate on a version's training rows: its features and the model's answers to them."""
    from ..data import load_schema
    from .drift import feature_columns, predict

    features = [c for c in feature_columns(spec, load_schema(spec)) if c in frame.columns]
    kind = "categorical" if spec.task == "classification" else "numerical"
    return calibrate(frame, features, spec.drift, spec.seed, predict(spec, model, frame), kind)


def read_logged(client, run_id: str) -> Calibration | None:
    """The calibration logged with a run; None for a version trained before calibration existed."""
    import json

    from .. import tracking

    path = tracking.download_artifact(client, run_id, CALIBRATION_ARTIFACT)  # an unreadable store raises
    if path is None:  # not logged
        return None
    with open(path, encoding="utf-8") as handle:
        return Calibration.model_validate(json.load(handle))


@dataclass(frozen=True)
class Recalibrated:
    model_name: str
    version: int
    run_id: str
    artifact: str
    calibration: Calibration

    def as_dict(self) -> dict:
        return {
            "model_name": self.model_name,
            "version": self.version,
            "run_id": self.run_id,
            "artifact": self.artifact,
            "calibration": self.calibration.model_dump(mode="json"),
        }


def recalibrate(spec, version: int | None = None) -> Recalibrated:
    """``drift calibrate``: calibrate a registered version on its logged training rows and log it."""
    from .. import tracking
    from ..evaluate import load_model
    from .reference import deployed, training_rows

    client = tracking.connect(spec)
    found = tracking.get_version(spec, client, version) if version is not None else deployed(spec, client, None).version
    rows = training_rows(spec, client, found)
    calibration = calibrate_rows(spec, rows.frame, load_model(found))
    client.log_dict(found.run_id, calibration.model_dump(mode="json"), CALIBRATION_ARTIFACT)
    return Recalibrated(
        spec.model_name, found.version, found.run_id, f"runs:/{found.run_id}/{CALIBRATION_ARTIFACT}", calibration
    )
