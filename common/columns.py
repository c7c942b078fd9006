"""Column names as users write them. `F.col("mean.perimeter")` would read a dot as a struct field (and a back-quote
as quoting), so every column a user names is referred to through `col`. PySpark's mapInArrow / mapInPandas /
applyInPandas look their input columns up by name the same way, so such columns travel to Python workers under an
alias (`with_aliases`) and get their names back there (`real_names`)."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F


def quoted(name: str) -> str:
    """`name` as Spark SQL reads one identifier: back-quoted, inner back-quotes doubled."""
    return "`" + name.replace("`", "``") + "`"


def col(name: str) -> Column:
    return F.col(quoted(name))


def with_aliases(df: DataFrame) -> tuple[DataFrame, tuple[tuple[str, str], ...]]:
    """`df` with every column PySpark's map calls cannot look up renamed, and the (alias, name) pairs."""
    aliases = {name: f"__column_{i}" for i, name in enumerate(df.columns) if "." in name or "`" in name}
    if not aliases:
        return df, ()
    return df.withColumnsRenamed(aliases), tuple((alias, name) for name, alias in aliases.items())


def real_names(names, renamed: tuple[tuple[str, str], ...]) -> list[str]:
    """The names a worker's columns had before `with_aliases` (in a Python worker: no Spark call)."""
    real = dict(renamed)
    return [real.get(name, name) for name in names]
