"""Held-out metrics for a fitted model, by task."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from training.tasks import CLASSIFICATION


def evaluate(model, X: pd.DataFrame, y: pd.Series, task: str) -> dict[str, float]:
    """Classification: accuracy, ROC AUC, F1, log loss. Regression: RMSE, MAE, R²."""
    if task == CLASSIFICATION:
        return _classification_metrics(model, X, y)
    predicted = model.predict(X)
    return {
        "rmse": float(np.sqrt(skm.mean_squared_error(y, predicted))),
        "mae": float(skm.mean_absolute_error(y, predicted)),
        "r2": float(skm.r2_score(y, predicted)),
    }


def _classification_metrics(model, X: pd.DataFrame, y: pd.Series) -> dict[str, float]:
    predicted = model.predict(X)
    proba = model.predict_proba(X)
    classes = model.classes_
    binary = len(classes) == 2
    result = {
        "accuracy": float(skm.accuracy_score(y, predicted)),
        # Binary: F1 of the positive class (classes_[1]); multiclass: support-weighted F1.
        "f1": float(
            skm.f1_score(y, predicted, pos_label=classes[1])
            if binary
            else skm.f1_score(y, predicted, average="weighted")
        ),
        "log_loss": float(skm.log_loss(y, proba, labels=classes)),
    }
    if y.nunique() < 2:  # ROC AUC is undefined on a one-class split; say so by leaving it out
        return result
    result["roc_auc"] = float(
        skm.roc_auc_score(y, proba[:, 1]) if binary else skm.roc_auc_score(y, proba, multi_class="ovr", labels=classes)
    )
    return result
