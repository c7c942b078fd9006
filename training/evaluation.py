"""Held-out metrics by task, from a fitted model or from predictions already made (the promotion gate)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from training.tasks import CLASSIFICATION

# Which way each metric improves; the promotion gate needs it for thresholds and tolerances.
GREATER_IS_BETTER = {
    "accuracy": True,
    "f1": True,
    "roc_auc": True,
    "r2": True,
    "log_loss": False,
    "rmse": False,
    "mae": False,
}


def evaluate(model, X: pd.DataFrame, y: pd.Series, task: str) -> dict[str, float]:
    """Classification: accuracy, ROC AUC, F1, log loss. Regression: RMSE, MAE, R²."""
    if task == CLASSIFICATION:
        return classification_metrics(y, model.predict(X), model.predict_proba(X), model.classes_)
    return regression_metrics(y, model.predict(X))


def regression_metrics(y, predicted) -> dict[str, float]:
    return {
        "rmse": float(np.sqrt(skm.mean_squared_error(y, predicted))),
        "mae": float(skm.mean_absolute_error(y, predicted)),
        "r2": float(skm.r2_score(y, predicted)),
    }


def classification_metrics(y, predicted, proba: np.ndarray, classes) -> dict[str, float]:
    """`proba` has one column per entry of `classes` (sorted, as scikit-learn and our MLlib pipelines order them)."""
    binary = len(classes) == 2
    result = {
        "accuracy": float(skm.accuracy_score(y, predicted)),
        # Binary: F1 of the positive class (classes[1]); multiclass: support-weighted F1.
        "f1": float(
            skm.f1_score(y, predicted, pos_label=classes[1])
            if binary
            else skm.f1_score(y, predicted, average="weighted")
        ),
        "log_loss": float(skm.log_loss(y, proba, labels=classes)),
    }
    if pd.Series(y).nunique() < 2:  # ROC AUC is undefined on a one-class split; say so by leaving it out
        return result
    result["roc_auc"] = float(
        skm.roc_auc_score(y, proba[:, 1]) if binary else skm.roc_auc_score(y, proba, multi_class="ovr", labels=classes)
    )
    return result
