"""Evidently's normed Wasserstein and Jensen-Shannon scores, vectorised over many random splits.

Calibration scores hundreds of splits per column; Evidently's own functions cost milliseconds per call
here (pandas on every call), so these compute the same numbers from value counts: a column's values are
coded once, and every split is a ``bincount`` of its current rows. ``tests/test_calibration.py`` checks
them against Evidently's functions on the same splits. K-S has a half-fast form: its statistic from the
counts and the limiting (Kolmogorov) p-value of it (monotone in the statistic at fixed sizes) for the null scores,
and the exact p-value Evidently computes at the threshold's statistic
(``ks_threshold``). Tests without a fast form (chi-square, PSI, ...) are scored by Evidently's function.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FAST_METHODS = ("wasserstein", "jensenshannon")


class CodedColumn:
    """A column's distinct values and each row's code (missing rows get code ``len(values)``)."""

    def __init__(self, series: pd.Series, numeric: bool):
        present = series.notna().to_numpy()
        values, codes = np.unique(series[present].to_numpy(), return_inverse=True)
        self.values = values.astype(float) if numeric else values
        self.codes = np.full(len(series), len(values), dtype=np.int64)
        self.codes[present] = codes
        self.total = np.bincount(self.codes, minlength=len(values) + 1)

    def counts(self, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Reference and current counts per distinct value for each split (rows of ``current`` indices)."""
        splits, width = current.shape[0], len(self.values) + 1
        flat = (np.arange(splits)[:, None] * width + self.codes[current]).ravel()
        cur = np.bincount(flat, minlength=splits * width).reshape(splits, width)
        ref = self.total[None, :] - cur
        return ref[:, :-1], cur[:, :-1]  # missing values are left out, as Evidently drops them


def normed_wasserstein(values: np.ndarray, ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """W1 between the two empirical distributions on the sorted ``values``, over the reference's std."""
    # Every split's ref + cur is the column's total, so the reference side comes from the current one:
    # one dense cumulative sum per split instead of two, and the reference's moments by matrix products.
    total = (ref[0] + cur[0]).astype(float)
    cur_n = cur.sum(axis=1).astype(float)
    ref_n = total.sum() - cur_n
    cum_cur = np.cumsum(cur, axis=1)
    gap = np.abs((np.cumsum(total)[None, :] - cum_cur) / ref_n[:, None] - cum_cur / cur_n[:, None])[:, :-1]
    distance = gap @ np.diff(values)
    centred = values - (total @ values) / total.sum()
    mean = (total @ centred - cur @ centred) / ref_n
    var = (total @ centred**2 - cur @ centred**2) / ref_n - mean**2
    return distance / np.maximum(np.sqrt(np.maximum(var, 0.0)), 0.001)


def shifted_wasserstein(values: np.ndarray, ref: np.ndarray, cur: np.ndarray, shift: float) -> np.ndarray:
    """The normed Wasserstein distance when every current value is moved by ``shift``."""
    grid = np.union1d(values, values + shift)
    ref_at = np.searchsorted(values, grid, side="right") - 1
    cur_at = np.searchsorted(values + shift, grid, side="right") - 1

    def cdf(counts: np.ndarray, at: np.ndarray) -> np.ndarray:
        cumulative = np.concatenate([np.zeros((len(counts), 1)), np.cumsum(counts, axis=1)], axis=1)
        return cumulative[:, at + 1] / counts.sum(axis=1, keepdims=True)

    gap = np.abs(cdf(ref, ref_at) - cdf(cur, cur_at))[:, :-1]
    distance = (gap * np.diff(grid)[None, :]).sum(axis=1)
    ref_n = ref.sum(axis=1, keepdims=True)
    mean = (ref * values).sum(axis=1, keepdims=True) / ref_n
    std = np.sqrt((ref * (values[None, :] - mean) ** 2).sum(axis=1) / ref_n[:, 0])
    return distance / np.maximum(std, 0.001)


def jensen_shannon(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """scipy's ``jensenshannon`` (natural log) of the two value shares, as Evidently calls it."""
    p = ref / ref.sum(axis=1, keepdims=True)
    q = cur / cur.sum(axis=1, keepdims=True)
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.where(p > 0, p * np.log(p / m), 0.0)
        right = np.where(q > 0, q * np.log(q / m), 0.0)
    return np.sqrt(np.maximum((left + right).sum(axis=1) / 2, 0.0))


def ks_statistic(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per split the two-sample K-S statistic (scipy's, from counts) and the two sizes."""
    ref_n, cur_n = ref.sum(axis=1), cur.sum(axis=1)
    gap = np.abs(np.cumsum(ref, axis=1) / ref_n[:, None] - np.cumsum(cur, axis=1) / cur_n[:, None]).max(axis=1)
    return gap, ref_n, cur_n


def ks_asymptotic(d: np.ndarray, n1: np.ndarray, n2: np.ndarray) -> np.ndarray:
    """The limiting (Kolmogorov) two-sided p-value at the effective size: closed form, monotone in ``d``."""
    from scipy.stats import kstwobign

    return kstwobign.sf(d * np.sqrt(n1 * n2 / (n1 + n2)))


def ks_asymptotic_statistic(p_value: float, n1: int, n2: int) -> float:
    """The inverse of ``ks_asymptotic``: the statistic whose limiting p-value is ``p_value``."""
    from scipy.stats import kstwobign

    return float(kstwobign.isf(p_value) / np.sqrt(n1 * n2 / (n1 + n2)))


def _ks_samples(n1: int, n2: int, h: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Two samples of sizes n1, n2 whose K-S statistic is exactly ``h / lcm(n1, n2)``, or None."""
    lcm = int(np.lcm(n1, n2))
    a, b = lcm // n1, lcm // n2
    i = np.arange(n1 + 1)
    rest = i * a - h
    ok = (rest >= 0) & (rest % b == 0) & (rest // b <= n2)
    if not ok.any():
        return None
    first, j = int(i[ok][0]), int(rest[ok][0] // b)
    return (np.r_[np.zeros(first), np.ones(n1 - first)], np.r_[np.zeros(j), np.ones(n2 - j)])


def ks_threshold(n1: int, n2: int, d: float, exact) -> float:
    """A p-value cut-off for the exact test ``exact(reference, current) -> p`` (Evidently's) at sizes n1, n2
    that calls drifted exactly the statistics at or above ``d``: between the exact p-values of the lattice
    points (``h / lcm``) just above and just below ``d``."""
    lcm = int(np.lcm(n1, n2))
    above = min(int(np.ceil(d * lcm - 1e-9)), lcm)
    while above <= lcm and (samples := _ks_samples(n1, n2, above)) is None:
        above += 1
    if above > lcm:
        return 0.0  # no statistic reaches d: never drifted
    p_above = exact(*samples)
    below = above - 1
    while below > 0 and (lower := _ks_samples(n1, n2, below)) is None:
        below -= 1
    p_below = exact(*lower) if below > 0 else 1.0
    return float(np.sqrt(p_above * p_below)) if p_above > 0 else float(p_below / 2)


def fast_form(method: str, series: pd.Series, numeric: bool) -> bool:
    """Whether ``method`` on this column has a vectorised form that equals Evidently's."""
    if method in ("wasserstein", "ks"):
        return numeric
    if method == "jensenshannon":  # Evidently bins numbers with more than 20 values: not done here
        return not numeric or series.nunique() <= 20
    return False
