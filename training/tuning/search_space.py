"""Search spaces for tuning, written once and turned into what each backend wants (Hyperopt, a grid, random-search
distributions, Optuna).

A space is JSON: a list is a set of choices, an object with `low`/`high` a range (`"log": true` samples on a log
scale, `"int": true` keeps whole numbers):

    {"C": {"low": 0.001, "high": 100, "log": true}, "penalty": ["l2"], "max_depth": [4, 8, null]}
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, clone

from common.errors import UserInputError


@dataclass(frozen=True)
class Choice:
    values: tuple


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    log: bool = False
    integer: bool = False

    def cast(self, value: float) -> float | int:
        return int(round(value)) if self.integer else float(value)


Space = dict[str, Choice | Range]

# Default spaces by estimator name (scikit-learn names as in training/sklearn/estimators.py). Ranges are wide enough to
# matter and narrow enough that a dozen trials on a small table find something: tree depth and leaf size against
# over-fitting, ensemble size and learning rate against under-fitting, regularisation for linear models.
SKLEARN_SPACES: dict[str, dict[str, Any]] = {
    "logistic_regression": {"C": {"low": 0.001, "high": 100.0, "log": True}},
    "linear_regression": {"fit_intercept": [True, False]},
    "random_forest": {
        "n_estimators": {"low": 50, "high": 200, "int": True},
        "max_depth": [4, 8, None],
        "min_samples_leaf": {"low": 1, "high": 5, "int": True},
    },
    "gradient_boosting": {
        "n_estimators": {"low": 50, "high": 200, "int": True},
        "learning_rate": {"low": 0.01, "high": 0.3, "log": True},
        "max_depth": {"low": 2, "high": 5, "int": True},
    },
    "hist_gradient_boosting": {
        "learning_rate": {"low": 0.02, "high": 0.3, "log": True},
        "max_iter": {"low": 50, "high": 400, "int": True},
        "max_leaf_nodes": {"low": 8, "high": 64, "int": True},
        "min_samples_leaf": {"low": 5, "high": 50, "int": True},
        "l2_regularization": {"low": 0.0, "high": 1.0},
    },
    # XGBoost's own names; subsample and column sampling against over-fitting, as its tuning guide advises.
    "xgboost": {
        "n_estimators": {"low": 50, "high": 400, "int": True},
        "learning_rate": {"low": 0.02, "high": 0.3, "log": True},
        "max_depth": {"low": 2, "high": 8, "int": True},
        "min_child_weight": {"low": 1, "high": 10, "log": True},
        "subsample": {"low": 0.6, "high": 1.0},
        "colsample_bytree": {"low": 0.6, "high": 1.0},
    },
}
# MLlib estimator parameter names (training/mllib/pipeline.py's estimators).
MLLIB_SPACES: dict[str, dict[str, Any]] = {
    "random_forest": {
        "numTrees": {"low": 10, "high": 100, "int": True},
        "maxDepth": {"low": 2, "high": 10, "int": True},
    },
    "gbt": {"maxIter": {"low": 10, "high": 60, "int": True}, "maxDepth": {"low": 2, "high": 6, "int": True}},
    "logistic_regression": {
        "regParam": {"low": 0.0001, "high": 1.0, "log": True},
        "elasticNetParam": {"low": 0.0, "high": 1.0},
    },
    "linear_regression": {
        "regParam": {"low": 0.0001, "high": 1.0, "log": True},
        "elasticNetParam": {"low": 0.0, "high": 1.0},
    },
    # xgboost.spark's estimator declares XGBoost's own names as MLlib params.
    "xgboost": {
        "n_estimators": {"low": 50, "high": 300, "int": True},
        "max_depth": {"low": 2, "high": 8, "int": True},
        "learning_rate": {"low": 0.02, "high": 0.3, "log": True},
    },
}


def parse_space(text: str | dict | None, default: dict[str, Any]) -> Space:
    """The user's space (JSON text or a dict), or `default` when none is given."""
    if isinstance(text, str) and text.strip():
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserInputError(f"space is not valid JSON ({exc.msg}): {text!r}") from exc
    else:
        raw = text if isinstance(text, dict) else default
    if not isinstance(raw, dict) or not raw:
        example = '{"C": {"low": 0.01, "high": 10}}'
        raise UserInputError(f"space must be a non-empty JSON object such as {example}, got {raw!r}")
    return {name: _parse_dimension(name, spec) for name, spec in raw.items()}


def _parse_dimension(name: str, spec: Any) -> Choice | Range:
    if isinstance(spec, list):
        if not spec:
            raise UserInputError(f"space parameter {name!r} lists no values")
        return Choice(tuple(spec))
    if isinstance(spec, dict) and {"low", "high"} <= spec.keys():
        unknown = set(spec) - {"low", "high", "log", "int"}
        if unknown:
            raise UserInputError(
                f"space parameter {name!r} has unknown key(s) {sorted(unknown)}; use low, high, log, int"
            )
        low, high = spec["low"], spec["high"]
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high)) or low >= high:
            raise UserInputError(f"space parameter {name!r} needs numbers low < high, got low={low!r} high={high!r}")
        if spec.get("log") and low <= 0:
            raise UserInputError(f"space parameter {name!r} is on a log scale, so low must be > 0, got {low!r}")
        return Range(float(low), float(high), bool(spec.get("log")), bool(spec.get("int")))
    raise UserInputError(
        f"space parameter {name!r} must be a list of choices or {{'low': .., 'high': ..}}, got {spec!r}"
    )


def check_sklearn_space(space: Space, estimator: BaseEstimator) -> None:
    """Every name is a parameter of `estimator`, and the values at each end of the space are ones it accepts."""
    valid = estimator.get_params(deep=False)
    unknown = sorted(set(space) - set(valid))
    if unknown:
        raise UserInputError(
            f"{type(estimator).__name__} does not accept {', '.join(unknown)}; it accepts: {', '.join(sorted(valid))}"
        )
    for name, dimension in space.items():
        for value in extremes(dimension):
            candidate = clone(estimator).set_params(**{name: value})
            if not hasattr(candidate, "_parameter_constraints"):
                continue  # XGBoost declares none: its booster checks values when it trains
            try:
                candidate._validate_params()  # scikit-learn's own parameter constraints, checked before any fit
            except (TypeError, ValueError) as exc:
                refused = f"space parameter {name!r}: {type(estimator).__name__} refuses {value!r}: {exc}"
                raise UserInputError(refused) from exc


def check_mllib_space(space: Space, stage) -> None:
    unknown = sorted(name for name in space if not stage.hasParam(name))
    if unknown:
        valid = sorted(p.name for p in stage.params)
        raise UserInputError(
            f"{type(stage).__name__} does not accept {', '.join(unknown)}; it accepts: {', '.join(valid)}"
        )


def extremes(dimension: Choice | Range) -> list:
    if isinstance(dimension, Choice):
        return list(dimension.values)
    return [dimension.cast(dimension.low), dimension.cast(dimension.high)]


def to_hyperopt(space: Space) -> dict:
    from hyperopt import hp

    result = {}
    for name, dim in space.items():
        if isinstance(dim, Choice):
            result[name] = hp.choice(name, list(dim.values))
        elif dim.log:
            bounds = (math.log(dim.low), math.log(dim.high))
            result[name] = hp.qloguniform(name, *bounds, 1) if dim.integer else hp.loguniform(name, *bounds)
        else:
            bounds = (dim.low, dim.high)
            result[name] = hp.quniform(name, *bounds, 1) if dim.integer else hp.uniform(name, *bounds)
    return result


def cast_point(space: Space, point: dict) -> dict:
    """A proposed point with whole-number ranges as ints (Hyperopt's q-distributions give floats)."""
    return {name: space[name].cast(v) if isinstance(space[name], Range) else v for name, v in point.items()}


def to_grid(space: Space, points_per_range: int) -> dict[str, list]:
    """A grid for GridSearchCV: choices as given, each range as `points_per_range` values spread over it."""
    grid = {}
    for name, dim in space.items():
        if isinstance(dim, Choice):
            grid[name] = list(dim.values)
            continue
        spread = np.geomspace if dim.log else np.linspace
        values = [dim.cast(v) for v in spread(dim.low, dim.high, points_per_range)]
        grid[name] = list(dict.fromkeys(values))  # whole-number ranges may round two points onto one
    return grid


def to_distributions(space: Space) -> dict[str, Any]:
    """Distributions for RandomizedSearchCV: choices sampled uniformly, ranges from scipy.stats."""
    from scipy import stats

    result = {}
    for name, dim in space.items():
        if isinstance(dim, Choice):
            result[name] = list(dim.values)
        elif dim.integer and not dim.log:
            result[name] = stats.randint(int(dim.low), int(dim.high) + 1)
        elif dim.log:
            result[name] = _IntegerLogUniform(dim.low, dim.high) if dim.integer else stats.loguniform(dim.low, dim.high)
        else:
            result[name] = stats.uniform(dim.low, dim.high - dim.low)
    return result


class _IntegerLogUniform:
    """Whole numbers sampled on a log scale (scipy has no such distribution)."""

    def __init__(self, low: float, high: float):
        from scipy import stats

        self._dist = stats.loguniform(low, high)

    def rvs(self, size=None, random_state=None):
        return np.rint(self._dist.rvs(size=size, random_state=random_state)).astype(int)


def describe(space: Space) -> str:
    """One line for logs and params: name=choices or [low, high] (log, int)."""
    parts = []
    for name, dim in space.items():
        if isinstance(dim, Choice):
            parts.append(f"{name}={list(dim.values)}")
        else:
            flags = ",".join(f for f, on in (("log", dim.log), ("int", dim.integer)) if on)
            parts.append(f"{name}=[{dim.low:g},{dim.high:g}]{'(' + flags + ')' if flags else ''}")
    return " ".join(parts)
