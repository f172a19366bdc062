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


def by_group(report) -> plt.Figure:
    """The primary metric per group, one panel per slice column; groups too small to judge hatched."""
    columns = report.columns
    heights = [max(1.2, 0.35 * len(c.groups) + 0.6) for c in columns]
    figure, panels = plt.subplots(len(columns), 1, figsize=(6, sum(heights)), squeeze=False,
                                  gridspec_kw={"height_ratios": heights})  # fmt: skip
    for axes, column in zip(panels[:, 0], columns, strict=True):
        names = [g.value for g in column.groups]
        values = [g.metric if g.metric is not None else 0.0 for g in column.groups]
        bars = axes.barh(names, values, color=["tab:blue" if g.judged else "lightgrey" for g in column.groups])
        for bar, group in zip(bars, column.groups, strict=True):
            if not group.judged:
                bar.set_hatch("//")
            label = f"{group.metric:.3f}" if group.metric is not None else "n/a"
            axes.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {label} ({group.rows})",
                      va="center", fontsize=8)  # fmt: skip
        axes.invert_yaxis()
        axes.set_title(column.column, fontsize=10, loc="left")
        axes.set_xlim(0, max([*values, 1e-9]) * 1.25)
    panels[-1, 0].set_xlabel(f"{report.metric} (rows); grey: too small to judge")
    figure.tight_layout()
    plt.close(figure)
    return figure
