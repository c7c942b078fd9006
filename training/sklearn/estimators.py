"""The scikit-learn estimators a user can pick by name, wrapped in the preprocessing their columns need."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from common.errors import UserInputError
from training.tasks import CLASSIFICATION, REGRESSION, LabeledData

# name -> {task: factory(seed)}. Linear models get scaled inputs; trees do not need it.
ESTIMATORS: dict[str, dict[str, Callable[[int], BaseEstimator]]] = {
    "logistic_regression": {CLASSIFICATION: lambda seed: LogisticRegression(max_iter=1000, random_state=seed)},
    "linear_regression": {REGRESSION: lambda seed: LinearRegression()},
    "random_forest": {
        CLASSIFICATION: lambda seed: RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1),
        REGRESSION: lambda seed: RandomForestRegressor(n_estimators=100, random_state=seed, n_jobs=1),
    },
    "gradient_boosting": {
        CLASSIFICATION: lambda seed: GradientBoostingClassifier(random_state=seed),
        REGRESSION: lambda seed: GradientBoostingRegressor(random_state=seed),
    },
}
_SCALED = {"logistic_regression", "linear_regression"}
ESTIMATOR_STEP = "estimator"


def build_estimator(name: str, task: str, hyperparams: dict[str, Any], seed: int) -> BaseEstimator:
    """The bare estimator with `hyperparams` applied; unknown names and parameters are refused, listing valid ones."""
    if name not in ESTIMATORS:
        raise UserInputError(f"unknown estimator {name!r}; choose one of: {', '.join(ESTIMATORS)}")
    by_task = ESTIMATORS[name]
    if task not in by_task:
        raise UserInputError(f"estimator {name!r} does not do {task}; it does: {', '.join(by_task)}")
    estimator = by_task[task](seed)
    valid = estimator.get_params(deep=False)
    unknown = sorted(set(hyperparams) - set(valid))
    if unknown:
        raise UserInputError(
            f"{type(estimator).__name__} does not accept {', '.join(unknown)}; it accepts: {', '.join(sorted(valid))}"
        )
    try:
        estimator.set_params(**hyperparams)
    except (TypeError, ValueError) as exc:
        raise UserInputError(f"bad hyperparameters for {type(estimator).__name__}: {exc}") from exc
    return estimator


def build_pipeline(name: str, data: LabeledData, hyperparams: dict[str, Any], seed: int) -> Pipeline:
    """Impute and (for linear models) scale numeric columns, one-hot encode string columns, then the estimator."""
    numeric_steps = [("impute", SimpleImputer(strategy="median"))]
    if name in _SCALED:
        numeric_steps.append(("scale", StandardScaler()))
    transformers = []
    if data.numeric_features:
        transformers.append(("numeric", Pipeline(numeric_steps), data.numeric_features))
    if data.categorical_features:
        # A missing string is a category of its own; a category unseen in training encodes as all zeros.
        one_hot = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        transformers.append(("categorical", one_hot, data.categorical_features))
    preprocess = ColumnTransformer(transformers, verbose_feature_names_out=False)
    estimator = build_estimator(name, data.task, hyperparams, seed)
    return Pipeline([("preprocess", preprocess), (ESTIMATOR_STEP, estimator)])
