import datetime as dt
import decimal
import logging

import numpy as np
import pandas as pd
import pytest

from common.errors import UserInputError
from training.tasks import CLASSIFICATION, REGRESSION, infer_task, split_features


@pytest.mark.parametrize(
    ("label", "task"),
    [
        (pd.Series(["yes", "no", "yes"]), CLASSIFICATION),
        (pd.Series([True, False, True]), CLASSIFICATION),
        (pd.Series([0, 1, 2, 1]), CLASSIFICATION),
        (pd.Series([0.0, 1.0, 1.0]), CLASSIFICATION),
        (pd.Series(np.linspace(0, 1, 50)), REGRESSION),
        (pd.Series(range(100)), REGRESSION),
    ],
)
def test_task_is_inferred_from_the_label(label, task):
    assert infer_task(label) == task


def test_split_sorts_numeric_and_string_features():
    frame = pd.DataFrame({"num": [1.0, 2.0], "flag": [True, False], "city": ["a", "b"], "y": [0, 1]})
    data = split_features(frame, "y")
    assert data.numeric_features == ["num", "flag"] and data.categorical_features == ["city"]
    assert list(data.features.columns) == ["num", "flag", "city"] and data.task == CLASSIFICATION


def test_rows_without_a_label_are_left_out_and_counted():
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [0, None, 1, 0]})
    data = split_features(frame, "y")
    assert data.rows_missing_label == 1 and data.features["x"].tolist() == [1.0, 3.0, 4.0]


def test_excluded_columns_are_not_features():
    frame = pd.DataFrame({"id": [1, 2], "x": [0.1, 0.2], "y": [0, 1]})
    assert list(split_features(frame, "y", exclude=["id"]).features.columns) == ["x"]
    with pytest.raises(UserInputError, match="excluded column.*not found: nope"):
        split_features(frame, "y", exclude=["nope"])


@pytest.mark.parametrize(
    ("frame", "label", "task", "message"),
    [
        (pd.DataFrame({"x": [1.0], "y": [1]}).iloc[:0], "y", "auto", "no rows"),
        (
            pd.DataFrame({"x": [1.0, 2.0], "y": [0, 1]}),
            "label",
            "auto",
            "label column 'label' not found; columns are: x, y",
        ),
        (pd.DataFrame({"x": [1.0, 2.0], "y": [1, 1]}), "y", "auto", "single class"),
        (pd.DataFrame({"x": [1.0, 2.0], "y": [None, None]}), "y", "auto", "label column 'y' has no values"),
        (
            pd.DataFrame({"x": [1.0, 2.0], "y": ["a", "b"]}),
            "y",
            "regression",
            "regression needs a numeric label",
        ),
        (pd.DataFrame({"x": [1.0, 2.0], "y": [0, 1]}), "y", "ranking", "unknown task 'ranking'"),
        (
            pd.DataFrame({"gap": pd.to_timedelta([1, 2], unit="s"), "y": [0, 1]}),
            "y",
            "auto",
            "feature column 'gap' has unsupported type timedelta64",
        ),
        (
            pd.DataFrame({"when": pd.to_datetime(["2024-01-01", "2024-01-02"]), "y": [0, 1]}),
            "y",
            "auto",
            r"no feature columns left besides the label \(left out: when \(a time column \(datetime64\[ns\]\)\)\)",
        ),
        (pd.DataFrame({"y": [0, 1]}), "y", "auto", "no feature columns"),
    ],
)
def test_bad_tables_are_refused_with_the_reason(frame, label, task, message):
    with pytest.raises(UserInputError, match=message):
        split_features(frame, label, task)


def test_time_columns_are_left_out_with_a_warning_and_decimals_are_numbers(caplog):
    frame = pd.DataFrame(
        {
            "when": pd.to_datetime(["2024-01-01 10:00", "2024-01-02 11:00", "2024-01-03 12:00"]),
            "zoned": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]).tz_localize("Europe/Berlin"),
            "day": [dt.date(2024, 1, 1), dt.date(2024, 1, 2), None],
            "amount": [decimal.Decimal("1.25"), None, decimal.Decimal("3.50")],
            "x": [0.1, 0.2, 0.3],
            "price": [decimal.Decimal("9.99"), decimal.Decimal("19.99"), decimal.Decimal("5")],
        }
    )
    with caplog.at_level(logging.WARNING, logger="training.tasks"):
        data = split_features(frame, "price", exclude=["zoned"])  # excluded by the user: no warning
    assert data.left_out_times == {"when": "a time column (datetime64[ns])", "day": "a time column (date)"}
    assert "left out column 'when': a time column" in caplog.text and "'day'" in caplog.text
    assert "zoned" not in caplog.text
    assert list(data.features.columns) == ["amount", "x"] and data.numeric_features == ["amount", "x"]
    assert data.features["amount"].dtype == "float64" and data.features["amount"].isna().tolist() == [
        False,
        True,
        False,
    ]
    assert data.label.dtype == "float64" and data.task == REGRESSION  # a decimal label is a number too
