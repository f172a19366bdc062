"""Monitoring: Evidently drift of what a served model is asked, a graded decision, and retraining.

``drift`` compares current data (the inference log, or any CSV/Parquet path or URI) with the
training data of the version an environment runs and decides ``none``, ``retrain``, ``escalate``
or ``insufficient_data``. ``retrain`` acts on a ``retrain`` decision: trains with the labelled
recent rows, applies the gates and opens the promotion to staging.
"""

from .decide import INSUFFICIENT, Quality, Reason
from .drift import DriftResult, drift
from .measure import ColumnDrift
from .retrain import RetrainResult, retrain

__all__ = ["INSUFFICIENT", "ColumnDrift", "DriftResult", "Quality", "Reason", "RetrainResult", "drift", "retrain"]
