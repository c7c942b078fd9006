"""Time and decimal columns in a pandas table, as Parquet written by pandas or Spark gives them: a timestamp (any
unit, zoned or not) or a date marks when a row happened, not what it is, so it is not a feature: a model given one
learns the training period and nothing that holds later (every row it scores is newer). The trainers leave such a
column out with a warning naming it, unless the user excludes it first. A decimal column (an amount, a price) is a
number: pandas reads it as Python `Decimal` objects, which scikit-learn would take for categories, so it becomes a
float feature (MLflow's signature enforcement turns Decimal inputs into floats the same way at scoring). The same
two decisions on a Spark schema for the jobs that read tables with Spark (train_mllib, train_per_group)."""

from __future__ import annotations

import datetime
import decimal

import pandas as pd
from pandas.api import types as ptypes

TIME_HINT = "derive numbers from it (hour, weekday, age) if time matters, or exclude it"


def time_columns(frame: pd.DataFrame) -> dict[str, str]:
    """column -> why it is left out (`a time column (datetime64[ns, UTC])`), for datetime64 columns and object
    columns whose values are all dates or times (a Parquet DATE reads as `datetime.date` objects)."""
    found = {}
    for column in frame.columns:
        values = frame[column]
        if ptypes.is_datetime64_any_dtype(values.dtype):
            found[column] = f"a time column ({values.dtype})"
        elif ptypes.is_object_dtype(values.dtype) and _all_of(values, (datetime.date, datetime.time)):
            kind = type(values.dropna().iloc[0]).__name__
            found[column] = f"a time column ({kind})"
    return found


def decimals_as_floats(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with every column of Decimal objects as float64 (the others untouched, not copied)."""
    decimals = [
        c for c in frame.columns if ptypes.is_object_dtype(frame[c].dtype) and _all_of(frame[c], decimal.Decimal)
    ]
    if not decimals:
        return frame
    return frame.assign(**{c: frame[c].astype("float64") for c in decimals})


def _all_of(values: pd.Series, kinds) -> bool:
    present = values.dropna()
    return len(present) > 0 and all(isinstance(v, kinds) for v in present)


def spark_time_columns(df) -> dict[str, str]:
    """column -> why, for a Spark DataFrame's timestamp (with or without a time zone) and date columns."""
    from pyspark.sql import types as T

    kinds = (T.TimestampType, T.TimestampNTZType, T.DateType)
    return {
        f.name: f"a time column ({f.dataType.simpleString()})"
        for f in df.schema.fields
        if isinstance(f.dataType, kinds)
    }


def decimals_as_doubles(df, columns: list[str]):
    """`df` with those of `columns` that are decimals cast to double: Spark's stages take decimals, but pandas (a
    model's input example and signature, the logged splits, a group's rows) would see Python Decimal objects. A
    table with the decimal column still scores: the signature's double accepts decimals."""
    from pyspark.sql import types as T

    from common.columns import col

    decimals = {c for c in columns if isinstance(df.schema[c].dataType, T.DecimalType)}
    if not decimals:
        return df
    return df.select(*[col(c).cast("double").alias(c) if c in decimals else col(c) for c in df.columns])
