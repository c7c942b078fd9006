"""Which input columns the `files` strategy carries, and as what type: a part file is read back by Spark (and by
monitoring), so a column leaves with the type Spark's own path gives it, and a column whose type would not come
back unchanged makes the strategy not apply, so `auto` takes a path through Spark instead (and says why).

Nanosecond timestamps (pandas' default) leave as microseconds, the finest Spark holds, keeping their time zone; a
value finer than a microsecond fails the task naming the file and the column, never rounded silently.
"""

from __future__ import annotations

import pyarrow as pa
from pyspark.sql import types as T
from pyspark.sql.pandas.types import from_arrow_type

# Arrow types a part file carries back to Spark unchanged (Spark reads them as the types it reads from the input).
_CARRIED = (
    pa.types.is_integer,
    pa.types.is_floating,
    pa.types.is_boolean,
    pa.types.is_string,
    pa.types.is_binary,
    pa.types.is_date32,
    pa.types.is_decimal,
    lambda t: pa.types.is_timestamp(t) and t.unit in ("ms", "us", "ns"),
)


def uncarried_column(schema: pa.Schema) -> str | None:
    """Why the `files` strategy cannot take this input's columns (the first one it cannot carry), or None.
    Others (INT96 read as nanoseconds is carried; nested types, dictionaries, durations are not) go through Spark."""
    for field in schema:
        if not any(check(field.type) for check in _CARRIED):
            return f"column {field.name!r} has Arrow type {field.type}, which the files strategy does not carry"
    return None


def output_type(arrow_type: pa.DataType) -> pa.DataType:
    """The type a carried column is written with: a nanosecond timestamp as microseconds, in its time zone."""
    if pa.types.is_timestamp(arrow_type) and arrow_type.unit == "ns":
        return pa.timestamp("us", tz=arrow_type.tz)
    return arrow_type


def spark_schema(schema: pa.Schema) -> T.StructType:
    """The Spark types of the input's columns, for binding them to the signature as every strategy does."""
    return T.StructType(
        [T.StructField(field.name, from_arrow_type(output_type(field.type)), field.nullable) for field in schema]
    )
