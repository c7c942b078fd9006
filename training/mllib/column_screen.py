"""Which of a table's columns can be features at all, judged on the data before any fit: a column with one value
for every row says nothing, and a string column whose values are nearly all distinct (a passenger's name, an order
id) is an identifier, whose categories a tree would fit to the training rows and nothing else (the name on
Titanic took held-out accuracy to 0.31). Both are left out with a warning naming them; the caller logs them. So
is a time column (timestamp, with or without a time zone, or date): it says when a row happened, and a model given it
learns the training period (training.column_kinds says why, for both paths). Decimal columns are numbers: the job
reads them as doubles (training.column_kinds.decimals_as_doubles), as the scikit-learn path does.

One aggregation over the table: row count, and per column its non-null count, approximate distinct count, min and
max (min == max with no nulls is "one value for every row", exactly, whatever the type)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from common.columns import col
from common.errors import UserInputError
from training.column_kinds import TIME_HINT, spark_time_columns

_logger = logging.getLogger(__name__)

# Said as training.sklearn.screening says it, so both paths log the same `dropped_columns`.
CONSTANT = "one value for every row"
NO_VALUES = "no values"


@dataclass
class ColumnScreen:
    n_rows: int
    dropped: dict[str, str] = field(default_factory=dict)  # column -> why

    def describe(self) -> str:
        """One line for the run's `dropped_columns` parameter: `name (id-like: 1299 distinct of 1313 values)`."""
        return "; ".join(f"{column} ({why})" for column, why in self.dropped.items())

    distinct: dict[str, int] = field(default_factory=dict)  # string column -> approximate distinct values


def screen_columns(
    df: DataFrame, columns: list[str], strings: list[str], id_like_ratio: float, max_categories: int
) -> ColumnScreen:
    """`columns`: the candidate features; `strings`: those of them that would be categories. A string column is
    id-like when its distinct values are at least `id_like_ratio` of its non-null rows and more than the cap (a
    column whose values all fit under the cap is a category whatever the table's size). A time column is left out
    by its type alone."""
    times = {name: why for name, why in spark_time_columns(df).items() if name in columns}
    for name, why in times.items():
        _logger.warning("left out column %r: %s, not a feature; %s", name, why, TIME_HINT)
    columns = [c for c in columns if c not in times]
    aggregates = [F.count(F.lit(1)).alias("__rows")]
    for i, name in enumerate(columns):
        c = col(name)
        aggregates += [F.count(c).alias(f"n{i}"), F.min(c).alias(f"lo{i}"), F.max(c).alias(f"hi{i}")]
        if name in strings:
            aggregates.append(F.approx_count_distinct(c, rsd=0.02).alias(f"d{i}"))
    row = df.agg(*aggregates).first().asDict()
    screen = ColumnScreen(n_rows=int(row["__rows"]), dropped=dict(times))
    if screen.n_rows == 0:
        return screen  # nothing to judge: the empty table is refused as such later
    for i, name in enumerate(columns):
        present = row[f"n{i}"]
        # An empty number column is refused later (the Imputer cannot learn from it); an empty string is left out.
        if present == 0 and name in strings or present == screen.n_rows and row[f"lo{i}"] == row[f"hi{i}"]:
            screen.dropped[name] = NO_VALUES if present == 0 else CONSTANT
        if name not in strings:
            continue
        distinct = int(row[f"d{i}"])
        screen.distinct[name] = distinct
        if distinct > max_categories and distinct >= id_like_ratio * present:
            screen.dropped[name] = f"id-like: {distinct} distinct of {present} values"
    for name, why in screen.dropped.items():
        if name in times:
            continue
        _logger.warning("left out column %r: %s (not a feature; see id_like_ratio / exclude)", name, why)
    return screen


def refuse_empty_number_columns(df: DataFrame, columns: list[str]) -> None:
    """MLlib's Imputer cannot learn a mean from a column without values; say which, before any run exists."""
    if not columns:
        return
    number = {c: col(c).cast("double") for c in columns}
    present = [F.count(F.when(number[c].isNotNull() & ~F.isnan(number[c]), 1)).alias(c) for c in columns]
    counts = df.agg(*present).first().asDict()
    empty = [c for c in columns if counts[c] == 0]
    if empty:
        raise UserInputError(
            f"feature column(s) {', '.join(map(repr, empty))} hold no values (all null or NaN); "
            f"exclude them (exclude={','.join(empty)})"
        )
