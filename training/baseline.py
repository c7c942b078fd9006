"""The trivial model's score on a run's own held-out rows, logged beside every metric with the lift over it.

A model worse than predicting the most frequent class (or the training mean) has learned nothing worth promoting,
and its metrics alone do not say so: an RMSE of 120 or an accuracy of 0.62 mean nothing without the figure a model
gets for free. Every training job (train_sklearn, train_mllib) logs `baseline_test_<metric>` and `lift_test_<metric>`
and judges its model on the headline metrics; one that does not beat the baseline is tagged on its run and its
registered version (QUALITY_TAG) and the job says so at the end. Registration still happens: the promotion gate is
what refuses it.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from training.evaluation import GREATER_IS_BETTER, classification_metrics, regression_metrics
from training.tasks import CLASSIFICATION

QUALITY_TAG = "lifecycle.quality"  # "beats baseline", or "below baseline: <metric> <value> vs <baseline>, ..."
BEATS_BASELINE = "beats baseline"
# The metrics a model must beat the baseline on. RMSE and R² rank models alike (the same squared errors over the
# same rows), so regression needs one of them; a classifier must beat the most frequent class's accuracy, and rank
# rows better than chance (ROC AUC > 0.5) where it is defined.
HEADLINE = {CLASSIFICATION: ("accuracy", "roc_auc"), "regression": ("rmse",)}


def baseline_metrics(task: str, y_train: pd.Series, y_test: pd.Series) -> dict[str, float]:
    """The metrics of the trivial model fitted on `y_train` and scored on `y_test`, under the names `evaluate` gives
    a real model's. Classification: always the most frequent training class, with the training class frequencies as
    probabilities (ROC AUC 0.5). Regression: always the training mean."""
    y_train, y_test = pd.Series(y_train).reset_index(drop=True), pd.Series(y_test).reset_index(drop=True)
    if task != CLASSIFICATION:
        return regression_metrics(y_test, np.full(len(y_test), float(y_train.mean())))
    frequencies = y_train.value_counts(normalize=True)
    classes = np.array(sorted(set(frequencies.index) | set(y_test.unique())))
    priors = frequencies.reindex(classes, fill_value=0.0).to_numpy()
    majority = frequencies.index[0]  # value_counts sorts by count, ties in first-seen order
    predicted = np.full(len(y_test), majority, dtype=np.asarray(y_test).dtype if len(y_test) else object)
    proba = np.tile(priors, (len(y_test), 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # F1 of a constant prediction: scikit-learn warns that it is undefined
        return classification_metrics(y_test, predicted, proba, classes)


def baseline_and_lift(metrics: dict[str, float], baseline: dict[str, float]) -> dict[str, float]:
    """`baseline_test_<m>` and `lift_test_<m>` for every metric both have. The lift is the gain over the baseline in
    the metric's own units, positive when the model is better: metric - baseline where greater is better (accuracy,
    ROC AUC, R²), baseline - metric where smaller is (RMSE, MAE, log loss)."""
    out = {}
    for name in metrics.keys() & baseline.keys():
        out[f"baseline_test_{name}"] = baseline[name]
        out[f"lift_test_{name}"] = lift(name, metrics[name], baseline[name])
    return out


def lift(name: str, value: float, baseline: float) -> float:
    return value - baseline if GREATER_IS_BETTER[name] else baseline - value


def quality_verdict(task: str, metrics: dict[str, float], baseline: dict[str, float]) -> str:
    """BEATS_BASELINE, or 'below baseline: ' and each headline metric that is not better than the baseline's."""
    shortfalls = [
        f"{name} {metrics[name]:.4g} vs {baseline[name]:.4g}"
        for name in HEADLINE[CLASSIFICATION if task == CLASSIFICATION else "regression"]
        if name in metrics and name in baseline and lift(name, metrics[name], baseline[name]) <= 0
    ]
    return BEATS_BASELINE if not shortfalls else "below baseline: " + ", ".join(shortfalls)


def loud_warning(verdict: str, model_name: str | None, version: str | None) -> str | None:
    """What the job prints at its end when the model does not beat the trivial one; None when it does."""
    if verdict == BEATS_BASELINE:
        return None
    where = f" ({model_name} version {version} is registered and tagged {QUALITY_TAG})" if version else ""
    return (
        f"WARNING: this model does not beat the trivial baseline on the held-out rows — {verdict}{where}. "
        "The promotion gate will refuse it; try another estimator, or exclude columns that identify rows."
    )


def record_baseline(task: str, metrics: dict[str, float], y_train, y_test, model_name: str | None, version) -> str:
    """Log the baseline and lift metrics and the QUALITY_TAG into the active run (and on the registered version,
    when there is one); return the verdict."""
    import mlflow

    baseline = baseline_metrics(task, y_train, y_test)
    mlflow.log_metrics(baseline_and_lift(metrics, baseline))
    verdict = quality_verdict(task, metrics, baseline)
    mlflow.set_tag(QUALITY_TAG, verdict)
    if version is not None:
        mlflow.MlflowClient().set_model_version_tag(model_name, str(version), QUALITY_TAG, verdict)
    return verdict
