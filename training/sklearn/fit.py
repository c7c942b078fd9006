"""Fit a scikit-learn pipeline on a split and log it: what `train_sklearn` and the tuning jobs' refit share."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import mlflow
import pandas as pd
from sklearn.model_selection import train_test_split

from common.errors import UserInputError
from training import plots
from training.baseline import loud_warning, record_baseline
from training.evaluation import evaluate
from training.held_out import log_test_split
from training.reference_profile import log_training_profile
from training.registration import classes_tag, registered_version
from training.sklearn.model import log_sklearn_model
from training.tasks import CLASSIFICATION, LabeledData

_logger = logging.getLogger(__name__)


def fit_and_log(pipeline, task: str, X_train, X_test, y_train, y_test, model_name: str | None):
    """Fit on the training split, log held-out metrics beside the trivial baseline's, plots, the test split, the
    reference profile (monitoring's baseline) and the model (registered when `model_name` is given) into the
    active run. Shared by `train_sklearn` and the tuning jobs' refit. Returns the metrics, the model's info, the
    version and, when the model does not beat the baseline, the warning the job ends with."""
    pipeline.fit(X_train, y_train)
    metrics = evaluate(pipeline, X_test, y_test, task)
    mlflow.log_metrics(metrics)
    log_evaluation_artifacts(pipeline, X_test, y_test, task)
    classifier = task == CLASSIFICATION
    log_training_profile(
        X_train.assign(**{y_train.name: y_train}),
        y_train.name,
        pipeline.predict(X_test),
        pipeline.predict_proba(X_test) if classifier else None,
        task=task,
        classes=pipeline.classes_ if classifier else None,
    )
    info = log_sklearn_model(pipeline, X_train, registered_model_name=model_name)
    tags = {"task": task, **(classes_tag(pipeline.classes_) if task == CLASSIFICATION else {})}
    version = registered_version(info, model_name, tags)
    warning = loud_warning(record_baseline(task, metrics, y_train, y_test, model_name, version), model_name, version)
    if warning:
        _logger.warning(warning)
    return metrics, info, version, warning


def split_train_test(labeled: LabeledData, test_fraction: float, seed: int):
    y = labeled.label
    # Stratify so every class is in both splits when the data allow it.
    stratify = y if labeled.task == CLASSIFICATION and y.value_counts().min() >= 2 else None
    try:
        return train_test_split(labeled.features, y, test_size=test_fraction, random_state=seed, stratify=stratify)
    except ValueError as exc:
        raise UserInputError(f"cannot split {len(y)} rows with test_fraction={test_fraction}: {exc}") from exc


def log_evaluation_artifacts(model, X_test: pd.DataFrame, y_test: pd.Series, task: str) -> None:
    """Plots, feature importances and the held-out split itself (so the model can be re-evaluated later)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        if task == CLASSIFICATION:
            plots.evaluation_pngs(out, y_test, model.predict(X_test), model.predict_proba(X_test), model.classes_)
        else:
            plots.evaluation_pngs(out, y_test, model.predict(X_test))
        importances = feature_importances(model)
        if importances is not None:
            plots.feature_importances_png(importances, out / "feature_importances.png")
            importances.to_csv(out / "feature_importances.csv", index=False)
        mlflow.log_artifacts(tmp, artifact_path="evaluation")
    log_test_split(X_test.assign(**{y_test.name: y_test}))


def feature_importances(pipeline) -> pd.DataFrame | None:
    """Importances by feature name after preprocessing (one-hot columns included), largest first. The estimator is
    the pipeline's last step, whatever its name (a trainer of its own need not use ESTIMATOR_STEP)."""
    estimator = pipeline[-1]
    if not hasattr(estimator, "feature_importances_"):
        return None
    names = pipeline[:-1].get_feature_names_out()
    frame = pd.DataFrame({"feature": names, "importance": estimator.feature_importances_})
    return frame.sort_values("importance", ascending=False, ignore_index=True)
