"""train_sklearn's column screen with time columns: they are left out when the table is split (said there, once)
and listed with the columns the screen leaves out, so the run's `dropped_columns` names every one."""

from __future__ import annotations

import logging

import pandas as pd

from training.sklearn.screening import screen_columns
from training.tasks import split_features


def test_time_and_constant_columns_are_left_out_each_said_once_and_listed(caplog):
    n = 30
    frame = pd.DataFrame(
        {
            "when": pd.date_range("2024-01-01", periods=n, freq="D"),
            "region": "EU",
            "x": [float(i % 7) for i in range(n)],
            "y": [i % 2 for i in range(n)],
        }
    )
    with caplog.at_level(logging.WARNING):
        screened = screen_columns(split_features(frame, "y"), id_like_ratio=0.9, max_categories=10)
    assert list(screened.data.features.columns) == ["x"] and screened.data.numeric_features == ["x"]
    assert screened.describe() == "when (a time column (datetime64[ns])); region (one value for every row)"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert [w.split(":")[0] for w in warnings] == ["left out column 'when'", "left out column 'region'"]


def test_nothing_but_time_columns_left_out_keeps_the_table_as_split():
    frame = pd.DataFrame({"when": pd.date_range("2024-01-01", periods=4), "x": [1.0, 2.0, 3.0, 4.0], "y": [0, 1] * 2})
    data = split_features(frame, "y")
    screened = screen_columns(data, id_like_ratio=0.9, max_categories=10)
    assert screened.data is data and screened.left_out == {"when": "a time column (datetime64[ns])"}
