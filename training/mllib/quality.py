"""The trivial model's score on an MLlib run's own split (training.baseline, shared with train_sklearn), logged
beside every held-out metric with the lift, and the verdict: tagged on the run here, on the version by the caller,
and said loudly at the end of the job.

Only the label column comes to the driver (one number per row): the baseline needs the training class
frequencies or mean and the held-out labels, nothing else."""

from __future__ import annotations

import logging

import mlflow
from pyspark.sql import functions as F
from sklearn.metrics import f1_score

from training.baseline import QUALITY_TAG, baseline_and_lift, baseline_metrics, loud_warning, quality_verdict
from training.mllib.pipeline import LABEL_INDEX
from training.tasks import CLASSIFICATION

_logger = logging.getLogger(__name__)


def log_baseline(job, metrics: dict[str, float]) -> str:
    """Logs `baseline_test_<m>` / `lift_test_<m>` and the QUALITY_TAG on the active run; returns the verdict."""
    label = LABEL_INDEX if job.spec.task == CLASSIFICATION else job.spec.label
    y_train = job.train.select(F.col(label).cast("double")).toPandas().iloc[:, 0]
    y_test = job.test.select(F.col(label).cast("double")).toPandas().iloc[:, 0]
    baseline = baseline_metrics(job.spec.task, y_train, y_test)
    if job.spec.task == CLASSIFICATION and len(y_test):
        # MLlib's f1 is support-weighted for two classes too: the baseline's must be the same figure.
        majority = y_train.value_counts().index[0]
        baseline["f1"] = float(f1_score(y_test, [majority] * len(y_test), average="weighted", zero_division=0))
    mlflow.log_metrics(baseline_and_lift(metrics, baseline))
    verdict = quality_verdict(job.spec.task, metrics, baseline)
    mlflow.set_tag(QUALITY_TAG, verdict)
    return verdict


def say_verdict(verdict: str, model_name: str | None, version: str | None) -> str | None:
    """At the end of the job, where a user looks, past Spark's and MLflow's logs; returned for the job's result."""
    warning = loud_warning(verdict, model_name, version)
    if warning is not None:
        _logger.warning(warning)
    return warning
