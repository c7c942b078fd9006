"""A column's values as monitoring reads them on Spark, exactly as common/profile.py reads them in pandas: numbers
(booleans as 0/1) as doubles with NaN as missing, categories as text (`common.profile.category_text`).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from common.columns import col

_NUMBERS = (T.NumericType, T.BooleanType)


def is_numeric_type(df: DataFrame, name: str) -> bool:
    return isinstance(df.schema[name].dataType, _NUMBERS)


def is_profiled_type(df: DataFrame, name: str) -> bool:
    """Arrays, maps and structs (a multiclass model's probabilities, say) are not profiled."""
    return not isinstance(df.schema[name].dataType, T.ArrayType | T.MapType | T.StructType | T.BinaryType)


def numeric_value(df: DataFrame, name: str) -> Column:
    value = col(name).cast("double")
    return F.nanvl(value, F.lit(None).cast("double")) if _is_float(df, name) else value


def category_value(df: DataFrame, name: str) -> Column:
    """Whole-number floats without '.0' and booleans as 'true'/'false', so a label read as 1.0 from one file and
    as 1 from another is one class, as in the baseline."""
    value = col(name)
    if _is_float(df, name):
        whole = (value == F.floor(value)) & (F.abs(value) < 1e15)
        text = F.when(whole, value.cast("long").cast("string")).otherwise(value.cast("string"))
        return F.when(~F.isnan(value), text)
    return value.cast("string")


def _is_float(df: DataFrame, name: str) -> bool:
    return isinstance(df.schema[name].dataType, T.FloatType | T.DoubleType)
