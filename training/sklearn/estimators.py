"""The scikit-learn estimators a user can pick by name, wrapped in the preprocessing their columns need.

The default, HistGradientBoosting, is built for tables: it takes missing values as they are and string columns as
native categories, and beat the random forest on the model-quality benchmark (bench/model_quality.py). A string
column keeps its `max_categories - 1` most frequent values; the rarer ones share one "other" category (values never
seen in training are treated as missing), so a column with hundreds of values (531 cities) generalises instead of
fitting the training rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from common.errors import UserInputError
from training.tasks import CLASSIFICATION, REGRESSION, LabeledData


def _xgboost(task: str, seed: int) -> BaseEstimator:
    from xgboost import XGBClassifier, XGBRegressor  # imported when chosen: the other estimators do without it

    return XGBClassifier(random_state=seed) if task == CLASSIFICATION else XGBRegressor(random_state=seed)


# name -> {task: factory(seed)}. Linear models get scaled inputs; trees do not need it.
ESTIMATORS: dict[str, dict[str, Callable[[int], BaseEstimator]]] = {
    "hist_gradient_boosting": {
        CLASSIFICATION: lambda seed: HistGradientBoostingClassifier(random_state=seed),
        REGRESSION: lambda seed: HistGradientBoostingRegressor(random_state=seed),
    },
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
    "xgboost": {
        CLASSIFICATION: lambda seed: _xgboost(CLASSIFICATION, seed),
        REGRESSION: lambda seed: _xgboost(REGRESSION, seed),
    },
}
DEFAULT_ESTIMATOR = "hist_gradient_boosting"
_SCALED = {"logistic_regression", "linear_regression"}
_NATIVE_CATEGORIES = {"hist_gradient_boosting"}  # string columns as ordinal codes the estimator splits on as sets
_NATIVE_CATEGORY_LIMIT = 255  # HistGradientBoosting's bins: at most this many categories a column
DEFAULT_MAX_CATEGORIES = 250
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


def build_pipeline(
    name: str, data: LabeledData, hyperparams: dict[str, Any], seed: int, max_categories: int = DEFAULT_MAX_CATEGORIES
) -> Pipeline:
    """Preprocess the columns for the estimator, then the estimator. HistGradientBoosting: numbers as they are (gaps
    included), strings as capped ordinal codes it treats as categories. The others: numbers imputed (and scaled for
    linear models), strings one-hot encoded with the same cap. XGBoost's classifier learns labels that are not
    0..k-1 through their indices."""
    estimator = build_estimator(name, data.task, hyperparams, seed)
    if name == "xgboost" and data.task == CLASSIFICATION:
        estimator = _xgboost_for_labels(estimator, data.label)
    if name in _NATIVE_CATEGORIES:
        if max_categories > _NATIVE_CATEGORY_LIMIT:
            raise UserInputError(
                f"max_categories={max_categories}: {name} takes at most {_NATIVE_CATEGORY_LIMIT} categories a column"
            )
        preprocess = _native_categories(data, max_categories)
        if "categorical_features" not in hyperparams:
            flags = [False] * len(data.numeric_features) + [True] * len(data.categorical_features)
            estimator.set_params(categorical_features=flags if any(flags) else None)
    else:
        preprocess = _one_hot(name, data, max_categories)
    return Pipeline([("preprocess", preprocess), (ESTIMATOR_STEP, estimator)])


def _native_categories(data: LabeledData, max_categories: int) -> ColumnTransformer:
    transformers = []
    if data.numeric_features:
        transformers.append(("numeric", "passthrough", data.numeric_features))
    if data.categorical_features:
        # Missing and never-seen values both become NaN, which the estimator treats as missing.
        codes = OrdinalEncoder(
            handle_unknown="use_encoded_value",
            unknown_value=np.nan,
            encoded_missing_value=np.nan,
            max_categories=max_categories,
        )
        transformers.append(("categorical", codes, data.categorical_features))
    return ColumnTransformer(transformers, verbose_feature_names_out=False)


def _one_hot(name: str, data: LabeledData, max_categories: int) -> ColumnTransformer:
    numeric_steps = [("impute", SimpleImputer(strategy="median"))]
    if name in _SCALED:
        numeric_steps.append(("scale", StandardScaler()))
    transformers = []
    if data.numeric_features:
        transformers.append(("numeric", Pipeline(numeric_steps), data.numeric_features))
    if data.categorical_features:
        # A missing string is a category of its own; a value unseen in training, or rarer than the kept ones,
        # falls in the "other" column (all zeros when the column had no rare values to make one).
        one_hot = OneHotEncoder(
            handle_unknown="infrequent_if_exist", max_categories=max_categories, sparse_output=False
        )
        transformers.append(("categorical", one_hot, data.categorical_features))
    return ColumnTransformer(transformers, verbose_feature_names_out=False)


def _xgboost_for_labels(estimator: BaseEstimator, label) -> BaseEstimator:
    """XGBoost's own classifier when the labels are 0..k-1; else one that numbers them (see xgboost_labels)."""
    from training.sklearn.xgboost_labels import LabelIndexedXGBClassifier, labels_are_indices

    if labels_are_indices(label):
        return estimator
    return LabelIndexedXGBClassifier(**estimator.get_params(deep=False))
