"""False alarms: how often a random split of one data set, which cannot have drifted, is called drift.

Run it on your own training data before trusting a threshold: both halves come from the same
rows, so every ``retrain`` or ``escalate`` it reports is a false alarm.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd

from ..config import Drift
from .decide import data_drift_reason
from .measure import Measurement, quick_scores


@dataclass(frozen=True)
class FalseAlarms:
    runs: int
    current_rows: int
    reference_rows: int
    alarms: int  # runs whose data-drift grade was retrain or escalate
    column_alarms: int  # single columns called drifted, over all runs
    columns: int

    @property
    def rate(self) -> float:
        return self.alarms / self.runs if self.runs else 0.0

    @property
    def column_rate(self) -> float:
        return self.column_alarms / (self.runs * self.columns) if self.runs and self.columns else 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "rate": self.rate, "column_rate": self.column_rate}


def false_alarms(frame: pd.DataFrame, features: list[str], config: Drift, current_rows: int,
                 seeds: range | list[int]) -> FalseAlarms:
    """Split ``frame`` at random per seed: ``current_rows`` rows as 'current', the rest as reference."""
    alarms = column_alarms = 0
    for seed in seeds:
        current = frame.sample(n=current_rows, random_state=seed)
        reference = frame.drop(index=current.index)
        measured = Measurement(quick_scores(reference, current, features, config), None, None)
        column_alarms += len(measured.drifted)
        alarms += data_drift_reason(measured, config).grade != "none"
    return FalseAlarms(len(seeds), current_rows, len(frame) - current_rows, alarms, column_alarms, len(features))
