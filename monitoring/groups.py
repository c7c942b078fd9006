"""The groups every statistic is computed for: window x model version, for the whole table and, with a slice
column, for each of its values as well, in one aggregation (grouping sets) rather than one pass per slice."""

from __future__ import annotations

from typing import NamedTuple

from pyspark.sql import DataFrame, GroupedData, Row
from pyspark.sql import functions as F

from monitoring.inputs import SLICE, VERSION
from monitoring.windows import WINDOW_KEY

WHOLE = "__monitor_whole"  # 1 on the whole table's rows of a sliced aggregation


class GroupKey(NamedTuple):
    window: int
    version: str
    slice_value: str | None  # None: the whole table


def grouped(df: DataFrame, *extra: str) -> GroupedData:
    """`df` grouped by window, version (, slice) and `extra`; with a slice column, also without it."""
    base = [WINDOW_KEY, VERSION, *extra]
    if SLICE not in df.columns:
        return df.groupBy(*base)
    return df.groupingSets([[WINDOW_KEY, VERSION, SLICE, *extra], base], WINDOW_KEY, VERSION, SLICE, *extra)


def key_columns(df: DataFrame) -> list[str]:
    """The columns of a row-level frame that name its group: window, version (, slice)."""
    return [WINDOW_KEY, VERSION, *([SLICE] if SLICE in df.columns else [])]


def whole_marker(df: DataFrame) -> list:
    """The aggregate telling a sliced aggregation's whole-table rows from a slice's (add it to `agg`)."""
    return [F.grouping(SLICE).alias(WHOLE)] if SLICE in df.columns else []


def group_key(row: Row) -> GroupKey:
    sliced = SLICE in row.asDict() and not row[WHOLE]
    return GroupKey(row[WINDOW_KEY], row[VERSION], row[SLICE] if sliced else None)


def partition_columns(df: DataFrame) -> list[str]:
    """The columns that tell groups apart in an aggregated frame (for window functions over it)."""
    return [WINDOW_KEY, VERSION, *([SLICE, WHOLE] if SLICE in df.columns else [])]
