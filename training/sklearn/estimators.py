"""The scikit-learn estimators a user can pick by name, wrapped in the preprocessing their columns need.

The default, `boosting_ensemble`, is the mean of two gradient-boosted models built for tables, each with its library
defaults and its own preprocessing: HistGradientBoosting (missing values as they are, strings as native categories)
and XGBoost (strings one-hot). Neither alone wins on every table of the model-quality benchmark
(bench/model_quality.py): HistGradientBoosting's 20-row leaves cannot follow a heavy-tailed label (Superstore Profit,
held-out R² 0.28 against XGBoost's 0.84) and XGBoost over-fits small tables (diabetes, auto-mpg); their mean was
within the goal of the better one on 12 of 13 tables, for two fits and no choice made on noisy held-out rows.
Classes are averaged as probabilities. For a regression train_sklearn keeps whichever of the two, or their mean,
has the smallest out-of-fold error on the training rows (training.sklearn.ensemble_choice): that met the goal on
the 13th table (auto-mpg, where HistGradientBoosting alone is the better model). Each member is also available by
name. A string column keeps its `max_categories - 1` most frequent values; the rarer ones share one "other" category
(values never seen in training are treated as missing by HistGradientBoosting, an all-zero one-hot row for the
others), so a column with hundreds of values (531 cities) generalises instead of fitting the training rows."""

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
    VotingClassifier,
    VotingRegressor,
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


def _ensemble(task: str, seed: int) -> BaseEstimator:
    """The bare ensemble (each member without its preprocessing): what `build_estimator` checks; `build_pipeline`
    gives each member its own preprocessing."""
    members = [(name, ESTIMATORS[name][task](seed)) for name in ENSEMBLE_MEMBERS]
    # Soft voting: the mean of the members' class probabilities, so a confident member outweighs an unsure one.
    return VotingClassifier(members, voting="soft") if task == CLASSIFICATION else VotingRegressor(members)


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
    "boosting_ensemble": {
        CLASSIFICATION: lambda seed: _ensemble(CLASSIFICATION, seed),
        REGRESSION: lambda seed: _ensemble(REGRESSION, seed),
    },
}
ENSEMBLE = "boosting_ensemble"
ENSEMBLE_MEMBERS = ("hist_gradient_boosting", "xgboost")
DEFAULT_ESTIMATOR = ENSEMBLE
_SCALED = {"logistic_regression", "linear_regression"}
_NATIVE_CATEGORIES = {"hist_gradient_boosting"}  # string columns as ordinal codes the estimator splits on as sets
_NATIVE_CATEGORY_LIMIT = 255  # HistGradientBoosting's bins: at most this many categories a column
DEFAULT_MAX_CATEGORIES = 250
ESTIMATOR_STEP = "estimator"


def build_estimator(name: str, task: str, hyperparams: dict[str, Any], seed: int) -> BaseEstimator:
    """The bare estimator with `hyperparams` applied; unknown names and parameters are refused, listing valid ones."""
    if name not in ESTIMATORS:
        raise UserInputError(f"unknown estimator {name!r}; choose one of: {', '.join(ESTIMATORS)}")
    if name == ENSEMBLE and hyperparams:
        raise UserInputError(
            f"estimator {ENSEMBLE!r} averages {' and '.join(ENSEMBLE_MEMBERS)} with their library defaults and takes "
            f"no hyperparams; to set some, choose one of them by name (estimator={ENSEMBLE_MEMBERS[0]})"
        )
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
    name: str,
    data: LabeledData,
    hyperparams: dict[str, Any],
    seed: int,
    max_categories: int = DEFAULT_MAX_CATEGORIES,
    numbered_classes: bool = False,
) -> Pipeline:
    """Preprocess the columns for the estimator, then the estimator. HistGradientBoosting: numbers as they are (gaps
    included), strings as capped ordinal codes it treats as categories. The others: numbers imputed (and scaled for
    linear models), strings one-hot encoded with the same cap. XGBoost's classifier learns labels that are not
    0..k-1 through their indices. The ensemble: each member in its own pipeline (the ensemble numbers the classes
    for its members itself)."""
    estimator = build_estimator(name, data.task, hyperparams, seed)
    if name == ENSEMBLE:
        members = [
            (m, build_pipeline(m, data, {}, seed, max_categories, numbered_classes=True)) for m in ENSEMBLE_MEMBERS
        ]
        estimator.set_params(estimators=members)
        return Pipeline([("preprocess", "passthrough"), (ESTIMATOR_STEP, estimator)])
    if name == "xgboost" and data.task == CLASSIFICATION and not numbered_classes:
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


def estimator_params(pipeline: Pipeline) -> dict[str, Any]:
    """The fitted-to-be estimator's own parameters, for the run to log: `name: value`, and for the ensemble each
    member's as `member.name: value` (not the nested pipelines' reprs)."""
    estimator = pipeline[ESTIMATOR_STEP]
    if not isinstance(estimator, VotingClassifier | VotingRegressor):
        return estimator.get_params()
    return {
        f"{member}.{key}": value
        for member, member_pipeline in estimator.estimators
        for key, value in member_pipeline[ESTIMATOR_STEP].get_params().items()
    }


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
