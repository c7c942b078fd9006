"""Split a table into features and label, and decide whether the label makes a classification or regression task."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

import pandas as pd
from pandas.api import types as ptypes

from common.errors import UserInputError
from training.column_kinds import TIME_HINT, decimals_as_floats, time_columns

_logger = logging.getLogger(__name__)

CLASSIFICATION = "classification"
REGRESSION = "regression"
TASKS = (CLASSIFICATION, REGRESSION)
TASK_CHOICES = ("auto", *TASKS)  # what a job's `task` parameter takes
MAX_CLASSES_FOR_INTEGER_LABEL = 20


@dataclass(frozen=True)
class LabeledData:
    features: pd.DataFrame
    label: pd.Series
    task: str
    numeric_features: list[str]
    categorical_features: list[str]
    rows_missing_label: int = 0  # rows left out because their label is missing
    left_out_times: dict[str, str] = field(default_factory=dict)  # time columns, not features: column -> why


@dataclass(frozen=True)
class TrainResult:
    """What a training job returns (train_sklearn, train_mllib)."""

    run_id: str
    model_uri: str
    task: str
    metrics: dict[str, float]
    model_name: str | None
    model_version: str | None
    best_params: dict[str, float] = field(default_factory=dict)  # the values cross-validation chose, if it ran
    warning: str | None = None  # said last and loudly: e.g. the model does not beat the trivial baseline

    def summary(self) -> str:
        """What the CLI prints when a training job ends."""
        lines = [f"run_id={self.run_id} task={self.task} metrics={json.dumps(self.metrics)}"]
        if self.best_params:
            lines.append(f"best parameters: {json.dumps(self.best_params)}")
        if self.model_version:
            lines.append(f"registered {self.model_name} version {self.model_version}")
        if self.warning:
            lines.append(self.warning)
        return "\n".join(lines)


def split_features(
    frame: pd.DataFrame, label: str, task: str = "auto", exclude: list[str] | None = None
) -> LabeledData:
    """Check the table and split it; every error names the column and what was wrong with it."""
    if frame.empty:
        raise UserInputError("the training data has no rows")
    if label not in frame.columns:
        raise UserInputError(f"label column {label!r} not found; columns are: {', '.join(map(str, frame.columns))}")
    missing_excluded = [c for c in exclude or [] if c not in frame.columns]
    if missing_excluded:
        raise UserInputError(f"excluded column(s) not found: {', '.join(missing_excluded)}")
    missing = frame[label].isna()
    if missing.all():
        raise UserInputError(f"label column {label!r} has no values")
    frame = frame[~missing]  # a row without a label can be neither learned from nor evaluated on
    frame = decimals_as_floats(frame.drop(columns=exclude or []))  # decimals are numbers (training.column_kinds)
    y = frame[label]
    features = frame.drop(columns=[label])
    times = time_columns(features)
    for column, why in times.items():
        _logger.warning("left out column %r: %s, not a feature; %s", column, why, TIME_HINT)
    features = features.drop(columns=list(times))
    if features.shape[1] == 0:
        left = f" (left out: {', '.join(f'{c} ({why})' for c, why in times.items())})" if times else ""
        raise UserInputError(f"no feature columns left besides the label{left}")
    numeric, categorical = [], []
    for column, dtype in features.dtypes.items():
        if ptypes.is_bool_dtype(dtype) or ptypes.is_numeric_dtype(dtype):
            numeric.append(column)
        elif ptypes.is_object_dtype(dtype) or ptypes.is_string_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
            categorical.append(column)
        else:
            raise UserInputError(
                f"feature column {column!r} has unsupported type {dtype}; supported: numeric, boolean, string"
            )
    resolved_task = infer_task(y) if task == "auto" else task
    if resolved_task not in TASKS:
        raise UserInputError(f"unknown task {task!r}; choose auto, {' or '.join(TASKS)}")
    if resolved_task == CLASSIFICATION and y.nunique() < 2:
        raise UserInputError(f"label column {label!r} has a single class ({y.iloc[0]!r}); a classifier needs two")
    if resolved_task == REGRESSION and not ptypes.is_numeric_dtype(y):
        raise UserInputError(f"label column {label!r} has type {y.dtype}; regression needs a numeric label")
    return LabeledData(features, y, resolved_task, numeric, categorical, int(missing.sum()), times)


def check_test_fraction(test_fraction: float) -> None:
    if not 0.0 < test_fraction < 1.0:
        raise UserInputError(f"test_fraction must be between 0 and 1 (exclusive), got {test_fraction}")


def infer_task(y: pd.Series) -> str:
    """Strings, booleans and small sets of integers are classes; anything else numeric is regression."""
    if not ptypes.is_numeric_dtype(y) or ptypes.is_bool_dtype(y):
        return CLASSIFICATION
    integral = ptypes.is_integer_dtype(y) or bool((y == y.round()).all())
    return CLASSIFICATION if integral and y.nunique() <= MAX_CLASSES_FOR_INTEGER_LABEL else REGRESSION
