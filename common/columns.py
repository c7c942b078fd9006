"""Column references for names as users write them: `F.col("mean.perimeter")` would read a dot as a struct field
(and a back-quote as quoting), so every column a user names is referred to through `col`."""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F


def quoted(name: str) -> str:
    """`name` as Spark SQL reads one identifier: back-quoted, inner back-quotes doubled."""
    return "`" + name.replace("`", "``") + "`"


def col(name: str) -> Column:
    return F.col(quoted(name))
