"""Evidently's normed Wasserstein and Jensen-Shannon scores, vectorised over many random splits.

Calibration scores hundreds of splits per column; Evidently's own functions cost milliseconds per call
here (pandas on every call), so these compute the same numbers from value counts: a column's values are
coded once, and every split is a ``bincount`` of its current rows. ``tests/test_calibration.py`` checks
them against Evidently's functions on the same splits. Tests without a fast form (K-S, chi-square, PSI,
...) are scored by Evidently's function itself.
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
    ref_n, cur_n = ref.sum(axis=1, keepdims=True), cur.sum(axis=1, keepdims=True)
    gap = np.abs(np.cumsum(ref, axis=1) / ref_n - np.cumsum(cur, axis=1) / cur_n)[:, :-1]
    distance = (gap * np.diff(values)[None, :]).sum(axis=1)
    mean = (ref * values).sum(axis=1, keepdims=True) / ref_n
    std = np.sqrt((ref * (values[None, :] - mean) ** 2).sum(axis=1) / ref_n[:, 0])
    return distance / np.maximum(std, 0.001)


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


def fast_form(method: str, series: pd.Series, numeric: bool) -> bool:
    """Whether ``method`` on this column has a vectorised form that equals Evidently's."""
    if method == "wasserstein":
        return numeric
    if method == "jensenshannon":  # Evidently bins numbers with more than 20 values: not done here
        return not numeric or series.nunique() <= 20
    return False
