"""Evaluation plots: confusion matrix, ROC and precision-recall for classifiers; residuals for regressors."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # no display on CI machines

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay, PrecisionRecallDisplay, RocCurveDisplay  # noqa: E402


def for_task(task: str, model, features: pd.DataFrame, target: pd.Series) -> dict[str, plt.Figure]:
    """Named figures for the task; binary-only plots are left out for multiclass."""
    if task == "regression":
        return {"residuals": _residuals(model, features, target)}
    figures = {"confusion_matrix": _figure(ConfusionMatrixDisplay.from_estimator, model, features, target)}
    if len(getattr(model, "classes_", [])) == 2:
        figures["roc"] = _figure(RocCurveDisplay.from_estimator, model, features, target)
        figures["precision_recall"] = _figure(PrecisionRecallDisplay.from_estimator, model, features, target)
    return figures


def _figure(display, model, features, target) -> plt.Figure:
    figure, axes = plt.subplots(figsize=(5, 4))
    display(model, features, target, ax=axes)
    figure.tight_layout()
    plt.close(figure)
    return figure


def _residuals(model, features, target) -> plt.Figure:
    predicted = model.predict(features)
    figure, axes = plt.subplots(figsize=(5, 4))
    axes.scatter(predicted, target - predicted, s=6, alpha=0.5)
    axes.axhline(0, color="grey", linewidth=1)
    axes.set(xlabel="predicted", ylabel="residual (actual - predicted)", title="Residuals")
    figure.tight_layout()
    plt.close(figure)
    return figure
