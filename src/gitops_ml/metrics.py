"""Metrics per task, and which way is better for each."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

CLASSIFICATION = ("accuracy", "f1", "precision", "recall", "roc_auc", "log_loss")
REGRESSION = ("rmse", "mae", "r2")
LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mae"})


def known(task: str) -> tuple[str, ...]:
    return CLASSIFICATION if task == "classification" else REGRESSION


def higher_is_better(name: str) -> bool:
    return name not in LOWER_IS_BETTER


def score(model, features: pd.DataFrame, target: pd.Series, task: str) -> dict[str, float]:
    """Every metric of the task for a fitted model on held-out rows."""
    # Imported here: the spec reads the metric names above on every command, scoring is rarer.
    import numpy as np
    from sklearn import metrics as skm

    predicted = model.predict(features)
    if task == "regression":
        return {
            "rmse": float(np.sqrt(skm.mean_squared_error(target, predicted))),
            "mae": float(skm.mean_absolute_error(target, predicted)),
            "r2": float(skm.r2_score(target, predicted)),
        }
    probabilities = model.predict_proba(features)
    binary = probabilities.shape[1] == 2
    average = "binary" if binary else "macro"
    result = {
        "accuracy": float(skm.accuracy_score(target, predicted)),
        "f1": float(skm.f1_score(target, predicted, average=average, zero_division=0)),
        "precision": float(skm.precision_score(target, predicted, average=average, zero_division=0)),
        "recall": float(skm.recall_score(target, predicted, average=average, zero_division=0)),
        "log_loss": float(skm.log_loss(target, probabilities, labels=model.classes_)),
    }
    if len(np.unique(target)) > 1:  # AUC is undefined on one class
        result["roc_auc"] = float(
            skm.roc_auc_score(target, probabilities[:, 1])
            if binary
            else skm.roc_auc_score(target, probabilities, multi_class="ovr", labels=model.classes_)
        )
    return result
