"""How scored rows fall into windows: tumbling time windows aligned to the epoch (`1d`, `6h`, `15m`, `30s`, `1w`) by
the scoring time, or one window per micro-batch of a stream (`batch`).

A window is named by a whole number, its key: the epoch second it starts at for a time window, the batch id for a
batch. Keys order windows, so "the previous window" is the one with the next smaller key that has rows.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from common.columns import col
from common.errors import UserInputError

BATCH = "batch"
BATCH_COLUMN = "batch_id"  # score_stream writes each micro-batch as <output>/batch_id=<n>/
DEFAULT_TIME_COLUMN = "scored_at"
WINDOW_KEY = "__monitor_window"
WINDOW_TIME = "__monitor_time"  # the row's time in epoch seconds (null for a batch window without a time column)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_TIME_TYPES = (T.TimestampType, T.TimestampNTZType, T.DateType)


@dataclass(frozen=True)
class WindowSpec:
    text: str
    seconds: int | None  # None: one window per micro-batch

    @property
    def by_batch(self) -> bool:
        return self.seconds is None

    def bounds(self, key: int, first: float | None, last: float | None) -> tuple[datetime | None, datetime | None]:
        """(start, end) of window `key`: the time window's own bounds, or a batch's first and last row time."""
        if self.seconds is not None:
            return _utc(key), _utc(key + self.seconds)
        return (_utc(first) if first is not None else None), (_utc(last) if last is not None else None)

    def label(self, key: int) -> str:
        if self.seconds is None:
            return f"batch {key}"
        return _utc(key).strftime("%Y-%m-%d %H:%M:%S").removesuffix(" 00:00:00").removesuffix(":00")


def parse_window(text: str) -> WindowSpec:
    value = text.strip().lower()
    if value == BATCH:
        return WindowSpec(BATCH, None)
    match = re.fullmatch(r"(\d+)\s*([smhdw])", value)
    if not match or int(match.group(1)) == 0:
        raise UserInputError(f"window must be like 1d, 6h, 15m, 30s, 1w or 'batch', got {text!r}")
    return WindowSpec(value, int(match.group(1)) * _UNITS[match.group(2)])


def with_windows(df: DataFrame, spec: WindowSpec, time_column: str, source: str) -> DataFrame:
    """`df` with its window key and time in seconds; every refusal names the column and what the table holds."""
    columns = ", ".join(df.columns)
    has_time = time_column in df.columns
    if spec.by_batch:
        if BATCH_COLUMN not in df.columns:
            raise UserInputError(
                f"window=batch needs the micro-batch id column {BATCH_COLUMN!r} (score_stream writes its output as "
                f"{BATCH_COLUMN}=<n> folders); {source} has none, so nothing identifies a batch (columns: {columns}); "
                "use a time window such as window=1h"
            )
        seconds = _seconds(df, time_column) if has_time else F.lit(None).cast("double")
        key = col(BATCH_COLUMN).cast("long")
    else:
        if not has_time:
            raise UserInputError(
                f"{source} has no time column {time_column!r} to cut windows by (columns: {columns}); pass "
                "time_column=<a timestamp column>, or window=batch for a stream's micro-batches"
            )
        seconds = _seconds(df, time_column)
        key = (F.floor(seconds / spec.seconds) * spec.seconds).cast("long")
    return df.withColumn(WINDOW_TIME, seconds).withColumn(WINDOW_KEY, key)


def rows_of_windows(df: DataFrame, spec: WindowSpec, time_column: str, keys: list[int]) -> Column | None:
    """A predicate on the table's own time (or batch id) column that holds for the rows of windows `keys`, written
    so that Parquet skips the files and row groups of other windows (a predicate on the derived window key reads
    every row); None when the column's type leaves nothing to skip by. It narrows the rows, the key decides."""
    if spec.by_batch:
        return col(BATCH_COLUMN).isin(keys) if BATCH_COLUMN in df.columns else None
    if time_column not in df.columns or not isinstance(df.schema[time_column].dataType, T.TimestampType):
        return None
    ranges: list[list[int]] = []
    for key in sorted(keys):  # consecutive windows as one range
        if ranges and ranges[-1][1] == key:
            ranges[-1][1] = key + spec.seconds
        else:
            ranges.append([key, key + spec.seconds])
    within = [(col(time_column) >= _utc(start)) & (col(time_column) < _utc(end)) for start, end in ranges]
    return reduce(operator.or_, within) if within else None


def _seconds(df: DataFrame, time_column: str) -> Column:
    kind = df.schema[time_column].dataType
    if isinstance(kind, _TIME_TYPES):
        return F.unix_micros(col(time_column).cast("timestamp")) / 1e6
    if isinstance(kind, T.StringType):  # ISO text: a value that is not a time has no window, and is counted
        return F.unix_micros(F.try_to_timestamp(col(time_column))) / 1e6
    raise UserInputError(
        f"time column {time_column!r} has type {kind.simpleString()}; a timestamp, a date or ISO text is needed"
    )


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
