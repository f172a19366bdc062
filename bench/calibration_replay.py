"""Why a data set's calibrated thresholds raise false alarms: a replay of bench/calibration.py's
same-distribution loop that keeps, per batch, what its verdict rests on.

    .venv/bin/python bench/calibration_replay.py [--dataset randhie] [--batches 2000] [--json out.json]

Per batch (its own 70/30 split and calibration, the bench's seeds): Evidently's drift-time score of each
column (all training rows against the batch) beside the calibration's vectorised score of the same pair,
and the rank of the batch's largest scaled score among the calibration's null maxima. If drift-time
scores are exchangeable with the calibration's splits, that rank is uniform and the alarm rate is
``1 - ceil((1 - rate) * (R + 1)) / (R + 1)``; a score that Evidently computes differently, a reference
size that matters or a lattice that the threshold misses would show here.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter

import numpy as np
import pandas as pd
from calibration import chosen_datasets, clopper_pearson, datasets, split

from gitops_ml.config import Drift
from gitops_ml.monitor import calibration as calibrating
from gitops_ml.monitor.drift import calibrated_thresholds
from gitops_ml.monitor.fast_scores import CodedColumn, jensen_shannon, normed_wasserstein
from gitops_ml.monitor.measure import quick_scores


def calibrate_keeping_null(training: pd.DataFrame, features: list[str], config: Drift, seed: int):
    """The calibration, and the oriented null scores with their median and spread (read from ``_scale``,
    which every calibration calls once per size: the one place they are all in hand)."""
    kept = {}
    scale = calibrating._scale

    def keep(oriented: np.ndarray):
        kept["oriented"] = oriented
        kept["middle"], kept["spread"] = scale(oriented)
        return kept["middle"], kept["spread"]

    calibrating._scale = keep
    try:
        found = calibrating.calibrate(training, features, config, seed)
    finally:
        calibrating._scale = scale
    return found, kept


def fast_score(method: str, training: pd.Series, current: pd.Series) -> float:
    """The calibration's vectorised score of the drift-time pair (all training rows against the batch)."""
    both = pd.concat([training, current], ignore_index=True)
    coded = CodedColumn(both, True)
    ref, cur = coded.counts(np.arange(len(training), len(both))[None, :])
    if method == "wasserstein":
        return float(normed_wasserstein(coded.values, ref, cur)[0])
    return float(jensen_shannon(ref, cur)[0])


def replay(frame: pd.DataFrame, batches: int, seed: int = 0) -> list[dict]:
    features = list(frame.columns)
    found = []
    for b in range(batches):
        training, held = split(frame, seed + 1000 + b)
        batch = min(500, len(training) // 2, len(held) // 2)
        config = Drift(min_rows=batch, calibration_sizes=[])
        calibration, null = calibrate_keeping_null(training, features, config, seed + b)
        size = calibration.for_rows(batch)
        current = held.sample(batch, random_state=seed + b)
        scores = quick_scores(training, current, features, config, calibrated_thresholds(size))
        by = size.by_column()
        scaled = [(s.score - null["middle"][j]) / null["spread"][j] for j, s in enumerate(scores)]
        maxima = ((null["oriented"] - null["middle"]) / null["spread"]).max(axis=1)
        found.append({
            "batch": b,
            "drifted": [s.column for s in scores if s.drifted],
            "rank": int((maxima < max(scaled)).sum()),
            "splits": len(maxima),
            "score_gap": max(abs(s.score - fast_score(by[s.column].method, training[s.column], current[s.column]))
                             for s in scores),
            "above_q95": [s.column for s, z in zip(scores, scaled, strict=True) if z > 1],
        })
    return found


def summary(name: str, found: list[dict]) -> str:
    n, splits = len(found), found[0]["splits"]
    alarms = sum(bool(r["drifted"]) for r in found)
    low, high = clopper_pearson(alarms, n)
    ranks = np.array([r["rank"] for r in found])
    top = int((ranks >= splits - 1).sum())
    windows = Counter(sum(bool(r["drifted"]) for r in found[i:i + 50]) for i in range(0, n - 49, 50))
    columns = Counter(c for r in found for c in r["drifted"])
    above = Counter(c for r in found for c in r["above_q95"])
    return (
        f"{name}: {alarms}/{n} batches with a calibrated alarm ({alarms / n:.2%}, 95% CI {low:.2%}-{high:.2%}); "
        f"rank of the largest scaled score among {splits} null maxima: mean {ranks.mean():.2f} (uniform: "
        f"{splits / 2:.0f}), {top} at the top two ({2 * n / (splits + 1):.1f} expected); largest "
        f"|Evidently - vectorised| {max(r['score_gap'] for r in found):.1e}; runs of 50 by alarms "
        f"{dict(sorted(windows.items()))}; alarms by column {dict(columns)}; share above the null q95 by column "
        f"{ {c: round(k / n, 4) for c, k in sorted(above.items())} }"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=2000)
    parser.add_argument("--dataset", action="append", default=[], help="as in bench/calibration.py")
    parser.add_argument("--json")
    args = parser.parse_args()
    results = {}
    for name, (frame, _, _) in chosen_datasets(datasets(), args.dataset).items():
        results[name] = replay(frame, args.batches)
        print(summary(name, results[name]), flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=1)


if __name__ == "__main__":
    main()
