"""What one tuning trial runs, on a Spark worker (SparkTrials) or on the driver (sequential Trials).

Kept in a module of its own so Spark pickles the objective by reference and the worker imports it; no MLflow calls
here: trials are logged from the driver, so parallel trials never write to the tracking store at the same time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from training.tuning.search_space import Space, cast_point


@dataclass(frozen=True)
class CrossValidatedObjective:
    pipeline: Any  # the unfitted scikit-learn Pipeline whose last step is named "estimator"
    data: Any  # a Spark Broadcast of (X, y), or the (X, y) tuple itself when trials run on the driver
    space: Space
    scoring: str  # a scikit-learn scorer name
    negated: bool  # the scorer reports the metric negated ("neg_log_loss"): flip it back
    greater_is_better: bool
    folds: int
    seed: int

    def __call__(self, point: dict) -> dict:
        from hyperopt import STATUS_OK
        from sklearn.base import clone
        from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score

        params = cast_point(self.space, point)
        X, y = self.data.value if hasattr(self.data, "value") else self.data
        model = clone(self.pipeline).set_params(**{f"estimator__{k}": v for k, v in params.items()})
        # The same folds for every trial (seeded), so trials are compared on the same rows.
        splitter = StratifiedKFold if self.scoring in _CLASSIFICATION_SCORERS else KFold
        folds = splitter(n_splits=self.folds, shuffle=True, random_state=self.seed)
        started = time.perf_counter()
        scores = cross_val_score(model, X, y, scoring=self.scoring, cv=folds, error_score="raise")
        values = -scores if self.negated else scores
        metric = float(values.mean())
        return {
            "status": STATUS_OK,
            "loss": -metric if self.greater_is_better else metric,
            "metric": metric,
            "metric_std": float(values.std()),
            "fit_seconds": time.perf_counter() - started,
        }


_CLASSIFICATION_SCORERS = {"accuracy", "neg_log_loss", "roc_auc", "roc_auc_ovr"}


@dataclass(frozen=True)
class OptunaObjective:
    """The same cross-validated trial for Optuna (`mlflow.pyspark.optuna`): Optuna asks for values through `trial`
    and wants the loss back; the rest of the result rides along as user attributes (logged on the trial's run)."""

    objective: CrossValidatedObjective

    def __call__(self, trial) -> float:
        point = {name: _suggest(trial, name, dimension) for name, dimension in self.objective.space.items()}
        result = self.objective(point)
        for key in ("metric", "metric_std", "fit_seconds"):
            trial.set_user_attr(key, result[key])
        return result["loss"]


def _suggest(trial, name: str, dimension):
    from training.tuning.search_space import Choice

    if isinstance(dimension, Choice):
        return trial.suggest_categorical(name, list(dimension.values))
    if dimension.integer:
        return trial.suggest_int(name, int(dimension.low), int(dimension.high), log=dimension.log)
    return trial.suggest_float(name, dimension.low, dimension.high, log=dimension.log)
