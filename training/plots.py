"""Evaluation plots and feature importances, written as files for `mlflow.log_artifacts`."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # jobs run headless
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay, RocCurveDisplay  # noqa: E402
from sklearn.preprocessing import label_binarize  # noqa: E402

_MAX_BARS = 30


def roc_curve_png(y_true, proba: np.ndarray, classes, path: Path) -> Path:
    """One curve for a binary model; one-vs-rest curves for each class of a multiclass model.

    `proba` has one column per entry of `classes`, in that order.
    """
    fig, ax = plt.subplots(figsize=(6, 5))
    if len(classes) == 2:
        RocCurveDisplay.from_predictions(y_true, proba[:, 1], pos_label=classes[1], ax=ax, name="model")
    else:
        y_bin = label_binarize(y_true, classes=classes)
        for i, cls in enumerate(classes):
            if y_bin[:, i].any():
                RocCurveDisplay.from_predictions(y_bin[:, i], proba[:, i], ax=ax, name=f"class {cls} vs rest")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    ax.set_title("ROC curve (held-out split)")
    return _save(fig, path)


def confusion_matrix_png(y_true, y_pred, labels, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 5))
    ConfusionMatrixDisplay.from_predictions(y_true, y_pred, labels=labels, ax=ax, colorbar=False)
    ax.set_title("Confusion matrix (held-out split)")
    return _save(fig, path)


def residuals_png(y_true, y_pred, path: Path) -> Path:
    y_pred = np.asarray(y_pred)
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.scatter(y_pred, np.asarray(y_true) - y_pred, s=10, alpha=0.6)
    ax.axhline(0, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual - predicted")
    ax.set_title("Residuals (held-out split)")
    return _save(fig, path)


def evaluation_pngs(folder: Path, y_true, y_pred, proba: np.ndarray | None = None, classes=None) -> list[Path]:
    """The task's plots: ROC curve and confusion matrix for a classifier (`proba` given), residuals otherwise."""
    if proba is None:
        return [residuals_png(y_true, y_pred, folder / "residuals.png")]
    return [
        roc_curve_png(y_true, proba, classes, folder / "roc_curve.png"),
        confusion_matrix_png(y_true, y_pred, classes, folder / "confusion_matrix.png"),
    ]


def feature_importances_png(importances: pd.DataFrame, path: Path) -> Path:
    """Horizontal bars of the largest importances; `importances` has columns feature, importance."""
    top = importances.nlargest(_MAX_BARS, "importance").iloc[::-1]
    fig, ax = plt.subplots(figsize=(7, max(3, 0.25 * len(top) + 1)))
    ax.barh(top["feature"], top["importance"])
    ax.set_xlabel("importance")
    ax.set_title(f"Feature importances (top {len(top)})")
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
