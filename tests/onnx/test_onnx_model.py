"""The serving side's conversions, without Spark: how raw values become graph inputs, and the title pre-step."""

import math

import numpy as np
import pandas as pd

from common.onnx_model import NULL_STRING, _numbers, _strings, _TitleStep

TITLE_STEP = {
    "kind": "title_age",
    "name_column": "name",
    "age_column": "age",
    "title_column": "title",
    "pattern": r"^[^,]*,\s*([A-Za-z]+)",
    "unknown_title": "Unknown",
    "title_means": {"Mr": 32.5, "Miss": 21.0},
    "overall_mean": 30.0,
}


def test_missing_strings_of_every_spelling_become_the_null_marker():
    values = np.array(["a", None, math.nan, pd.NA, 3], dtype=object)
    assert _strings(values).reshape(-1).tolist() == ["a", NULL_STRING, NULL_STRING, NULL_STRING, "3"]


def test_numbers_and_booleans_become_doubles_with_nan_for_missing():
    assert _numbers(np.array([1, 2], dtype=np.int64)).tolist() == [[1.0], [2.0]]
    flags = _numbers(np.array([True, False, None], dtype=object)).reshape(-1)
    assert flags[:2].tolist() == [1.0, 0.0] and math.isnan(flags[2])
    numbers = _numbers(pd.array([1, None], dtype="Int64").to_numpy()).reshape(-1)
    assert numbers[0] == 1.0 and math.isnan(numbers[1])


def test_title_step_follows_spark_regexp_extract_with_java_whitespace():
    step = _TitleStep(TITLE_STEP)
    assert step.title("Braund, Mr. Owen") == "Mr"
    assert step.title("Allen,Miss Elisabeth") == "Miss"
    assert step.title("No comma") == "Unknown"
    assert step.title("Doe,\u00a0Mr John") == "Unknown"  # Java's \s is ASCII only: a no-break space is no space
    assert step.title(None) is None


def test_title_step_fills_missing_ages_by_title_then_overall():
    step = _TitleStep(TITLE_STEP)
    names = np.array(["A, Mr X", "B, Miss Y", "C, Rev Z", None, "D, Mr W"], dtype=object)
    ages = np.array([None, math.nan, None, None, 40.0], dtype=object)
    out = step.apply({"name": names, "age": ages})
    assert out["title"].tolist() == ["Mr", "Miss", "Rev", None, "Mr"]
    assert out["age"].tolist() == [32.5, 21.0, 30.0, 30.0, 40.0]
