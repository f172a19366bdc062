"""False alarms and detections of calibrated against fixed drift thresholds, on real packaged data.

    .venv/bin/python bench/calibration.py [--batches 50] [--dataset randhie] [--json out.json]

Per data set (shipped inside scikit-learn or statsmodels, no download): 70 % of the rows are the
training rows (calibrated on, and the reference), 30 % are held out. Each same-distribution batch has
its own random 70/30 split (and its own calibration), so the batches are independent draws of what the
guarantee is about: a training set and a batch from the same population. The previous design, one
split and every batch drawn from its held-out rows (overlapping batches that share that held-out set's
chance difference from the training rows), is reported beside it. A batch is a false alarm when the
data-drift grade is not ``none``
(fixed: Evidently's thresholds and the 0.3 share) or when any column passes its calibrated threshold
(calibrated: stricter than a retrain). Shifted batches: one numeric column moved by 1 standard
deviation, and a subgroup left out of training. Prediction drift is not part of this bench (no model).
The scores are Evidently's stat-test functions (``quick_scores``, equal to its report: tests).
"""

from __future__ import annotations

import argparse
import json
import time

import pandas as pd
from scipy.stats import beta

from gitops_ml.config import Drift
from gitops_ml.monitor.calibration import calibrate
from gitops_ml.monitor.decide import data_drift_reason
from gitops_ml.monitor.drift import calibrated_thresholds
from gitops_ml.monitor.measure import Measurement, quick_scores


def datasets() -> dict[str, tuple[pd.DataFrame, str, str]]:
    """name -> (features, a numeric column to shift, a subgroup column: its largest value is left out)."""
    from sklearn.datasets import load_breast_cancer, load_digits, load_wine
    from statsmodels import datasets as sm

    found = {
        "fair (statsmodels)": (sm.fair.load_pandas().data.drop(columns=["affairs"]), "age", "occupation"),
        "randhie (statsmodels)": (sm.randhie.load_pandas().data.drop(columns=["mdvis"]), "lpi", "hlthg"),
        "wine (sklearn)": (load_wine(as_frame=True).frame.drop(columns=["target"]), "alcohol", "ash"),
        "breast_cancer (sklearn)": (
            load_breast_cancer(as_frame=True).frame.drop(columns=["target"]),
            "mean radius",
            "mean texture",
        ),
        "digits (sklearn)": (load_digits(as_frame=True).frame.drop(columns=["target"]), "pixel_2_3", "pixel_3_3"),
    }
    return found


def chosen_datasets(found: dict, names: list[str]) -> dict:
    """The data sets whose name contains one of ``names`` (all when none is given); an unknown name is an error."""
    unknown = [n for n in names if not any(n in name for name in found)]
    if unknown:
        raise SystemExit(f"--dataset {', '.join(unknown)}: no such data set (known: {', '.join(found)})")
    return {name: d for name, d in found.items() if not names or any(n in name for n in names)}


def clopper_pearson(k: int, n: int) -> tuple[float, float]:
    return (float(beta.ppf(0.025, k, n - k + 1)) if k else 0.0, float(beta.ppf(0.975, k + 1, n - k)) if k < n else 1.0)


def split(frame: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    shuffled = frame.sample(frac=1, random_state=seed).reset_index(drop=True)
    cut = int(len(shuffled) * 0.7)
    return shuffled.iloc[:cut], shuffled.iloc[cut:]


def verdicts(training: pd.DataFrame, current: pd.DataFrame, features: list[str], config: Drift,
             thresholds: dict) -> tuple[bool, list[str]]:
    """(fixed thresholds: data-drift grade above none, calibrated: the columns past their thresholds)."""
    fixed = Measurement(quick_scores(training, current, features, config), None, None)
    ours = Measurement(quick_scores(training, current, features, config, thresholds), None, None)
    return data_drift_reason(fixed, config).grade != "none", [c.column for c in ours.drifted]


def run(name: str, frame: pd.DataFrame, shifted: str, group: str, batches: int, seed: int = 0) -> dict:
    features = list(frame.columns)
    training, held = split(frame, seed)
    batch = min(500, len(training) // 2, len(held) // 2)
    config = Drift(min_rows=batch, calibration_sizes=[])
    started = time.perf_counter()
    calibration = calibrate(training, features, config, seed)
    seconds = time.perf_counter() - started
    thresholds = calibrated_thresholds(calibration.for_rows(batch))
    one_split = [
        verdicts(training, held.sample(batch, random_state=seed + 1 + b), features, config, thresholds)
        for b in range(batches)
    ]
    same = []
    for b in range(batches):  # independent: a fresh split and calibration per batch
        own_training, own_held = split(frame, seed + 1000 + b)
        own = calibrated_thresholds(calibrate(own_training, features, config, seed + b).for_rows(batch))
        same.append(verdicts(own_training, own_held.sample(batch, random_state=seed + b), features, config, own))
    sd = training[shifted].std()
    moved = [
        verdicts(training, held.sample(batch, random_state=seed + 1 + b).assign(**{shifted: lambda d: d[shifted] + sd}),
                 features, config, thresholds)
        for b in range(10)
    ]
    shuffled = frame.sample(frac=1, random_state=seed).reset_index(drop=True)
    top = shuffled[group].value_counts().index[0]
    outside, inside = shuffled[shuffled[group] != top], shuffled[shuffled[group] == top]
    sub_batch = min(batch, len(inside))
    sub_cal = calibrate(outside, features, Drift(min_rows=sub_batch, calibration_sizes=[]), seed)
    sub_thresholds = calibrated_thresholds(sub_cal.for_rows(sub_batch))
    current = inside.sample(sub_batch, random_state=seed)
    subgroup_fixed = (
        data_drift_reason(Measurement(quick_scores(outside, current, features, config), None, None), config).grade
        != "none"
    )
    subgroup_ours = bool(
        Measurement(quick_scores(outside, current, features, config, sub_thresholds), None, None).drifted
    )
    fixed_alarms, our_alarms = sum(f for f, _ in same), sum(bool(o) for _, o in same)
    one_fixed, one_ours = sum(f for f, _ in one_split), sum(bool(o) for _, o in one_split)
    return {
        "dataset": name,
        "rows": len(frame),
        "columns": len(features),
        "batch": batch,
        "batches": batches,
        "calibration_seconds": round(seconds, 2),
        "conservative": calibration.sizes[0].conservative,
        "fixed_false_alarms": fixed_alarms,
        "fixed_ci": clopper_pearson(fixed_alarms, batches),
        "calibrated_false_alarms": our_alarms,
        "calibrated_ci": clopper_pearson(our_alarms, batches),
        "calibrated_alarm_columns": {b: o for b, (_, o) in enumerate(same) if o},
        "one_split_fixed_false_alarms": one_fixed,
        "one_split_calibrated_false_alarms": one_ours,
        "shift_1sd_column": shifted,
        "shift_fixed_detected": sum(f for f, _ in moved),
        "shift_calibrated_detected": sum(bool(o) for _, o in moved),
        "shift_batches": len(moved),
        "subgroup": f"{group} == {top}",
        "subgroup_fixed_detected": subgroup_fixed,
        "subgroup_calibrated_detected": subgroup_ours,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--dataset", action="append", default=[],
                        help="run only the data sets whose name contains this (repeatable); default: all")
    parser.add_argument("--json")
    args = parser.parse_args()
    chosen = chosen_datasets(datasets(), args.dataset)
    results = [run(name, *found, args.batches) for name, found in chosen.items()]
    for r in results:
        print(
            f"{r['dataset']}: {r['rows']} rows x {r['columns']}, batch {r['batch']}: false alarms fixed "
            f"{r['fixed_false_alarms']}/{r['batches']} (95% CI {r['fixed_ci'][0]:.3f}-{r['fixed_ci'][1]:.3f}), "
            f"calibrated {r['calibrated_false_alarms']}/{r['batches']} (95% CI {r['calibrated_ci'][0]:.3f}-"
            f"{r['calibrated_ci'][1]:.3f}; batch: columns {r['calibrated_alarm_columns']}); one split: fixed "
            f"{r['one_split_fixed_false_alarms']}, calibrated "
            f"{r['one_split_calibrated_false_alarms']}; +1 sd on {r['shift_1sd_column']}: fixed "
            f"{r['shift_fixed_detected']}"
            f"/{r['shift_batches']}, calibrated {r['shift_calibrated_detected']}/{r['shift_batches']}; "
            f"subgroup {r['subgroup']}: fixed {r['subgroup_fixed_detected']}, calibrated "
            f"{r['subgroup_calibrated_detected']}; calibration {r['calibration_seconds']} s"
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
