"""Time columns between Parquet files and Spark.

pandas writes a datetime column as Parquet TIMESTAMP(NANOS) (Arrow timestamp[ns], its default), which Spark refuses
to read ([PARQUET_TYPE_ILLEGAL] Illegal Parquet type: INT64 (TIMESTAMP(NANOS,false))): Spark's timestamps hold
microseconds. Spark's setting `spark.sql.legacy.parquet.nanosAsLong` makes it read such a column as the raw count of
nanoseconds (a long) instead; this module reads the file's schema with pyarrow first, reads those columns as longs
and turns them back into Spark timestamps: a time-zone-aware column into TIMESTAMP, a naive one into TIMESTAMP_NTZ
(as Spark reads naive microsecond timestamps). A value finer than a microsecond would not come back unchanged: it is
refused, naming the column, never rounded silently.

Spark writes TIMESTAMP columns to Parquet as INT96 by default, which pandas reads back without their time zone;
`microsecond_parquet_output` makes a write use TIMESTAMP(MICROS) instead, which every reader reads as an instant.
"""

from __future__ import annotations

import contextlib

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from common.arrow_fs import filesystem_and_path
from common.columns import col
from common.errors import UserInputError

NANOS_AS_LONG = "spark.sql.legacy.parquet.nanosAsLong"
OUTPUT_TIMESTAMP_TYPE = "spark.sql.parquet.outputTimestampType"
_NANOS_PER_MICRO = 1000


def nanosecond_columns(location: str) -> dict[str, bool]:
    """Top-level timestamp[ns] columns of the input's first Parquet file (name -> has a time zone), read from its
    footer with pyarrow. {} when pyarrow cannot look (an unreadable input is Spark's to report)."""
    try:
        filesystem, path = filesystem_and_path(location)
        info = filesystem.get_file_info(path)
        if info.type == pafs.FileType.Directory:
            entries = filesystem.get_file_info(pafs.FileSelector(path, recursive=True))
            files = sorted(e.path for e in entries if e.type == pafs.FileType.File and not _hidden(e.path[len(path) :]))
            if not files:
                return {}
            path = files[0]
        with filesystem.open_input_file(path) as handle:
            footer = pq.ParquetFile(handle)
            schema, stored = footer.schema_arrow, footer.schema
    except (OSError, pa.ArrowException, ValueError):
        return {}
    # Spark's own default, INT96, is shown by pyarrow as timestamp[ns] too, but Spark reads it as a timestamp: only
    # INT64 nanoseconds need the long detour.
    int96 = {stored.column(i).path for i in range(len(stored)) if stored.column(i).physical_type == "INT96"}
    return {
        field.name: field.type.tz is not None
        for field in schema
        if pa.types.is_timestamp(field.type) and field.type.unit == "ns" and field.name not in int96
    }


def _hidden(relative: str) -> bool:
    """Spark skips files and folders whose name starts with '_' or '.' (its markers, temporary files)."""
    return any(part.startswith(("_", ".")) for part in relative.split("/") if part)


def read_parquet(spark: SparkSession, location: str) -> DataFrame:
    """Parquet as Spark reads it, except that nanosecond timestamp columns are read too, as microseconds."""
    nanos = nanosecond_columns(location)
    if not nanos:
        return spark.read.parquet(location)
    with session_setting(spark, NANOS_AS_LONG, "true"):
        raw = spark.read.parquet(location)  # the schema is fixed here: the rows read later need no setting
    return raw.select(*[as_microseconds(name, nanos[name]) if name in nanos else col(name) for name in raw.columns])


def as_microseconds(name: str, tz_aware: bool) -> Column:
    """A column of nanoseconds since the epoch as a Spark timestamp; a value with nanoseconds fails the job,
    naming the column and the value."""
    nanos = col(name)
    micros = (nanos.cast("decimal(20,0)") / _NANOS_PER_MICRO).cast("long")  # exact: a double would round
    if tz_aware:
        stamp = F.timestamp_micros(micros)
    else:  # counted from the epoch on the wall clock: no session time zone involved
        stamp = F.timestamp_add("MICROSECOND", micros, F.lit("1970-01-01 00:00:00").cast("timestamp_ntz"))
    lost = F.concat(F.lit(sub_microsecond_message(name) + " (nanoseconds since the epoch: "), nanos.cast("string"))
    return (
        F.when(F.pmod(nanos, F.lit(_NANOS_PER_MICRO)) != 0, F.raise_error(F.concat(lost, F.lit(")"))))
        .otherwise(stamp)
        .alias(name)
    )


def sub_microsecond_message(name: str) -> str:
    return (
        f"column {name!r} holds a timestamp with nanoseconds, which Spark's microsecond timestamps cannot hold; "
        "round the column to microseconds before scoring"
    )


def check_microseconds(spark: SparkSession, location: str) -> None:
    """Refuse, before anything runs, an input whose nanosecond timestamps hold values finer than a microsecond.
    One pass over those columns only (Parquet reads no other column)."""
    nanos = nanosecond_columns(location)
    if not nanos:
        return
    with session_setting(spark, NANOS_AS_LONG, "true"):
        raw = spark.read.parquet(location)
    counts = raw.agg(
        *[F.count_if(F.pmod(col(name), F.lit(_NANOS_PER_MICRO)) != 0).alias(name) for name in nanos]
    ).first()
    for name in nanos:
        if counts[name]:
            raise UserInputError(f"{sub_microsecond_message(name)} ({counts[name]} row(s) of {location})")


@contextlib.contextmanager
def microsecond_parquet_output(spark: SparkSession):
    """Writes inside the block store TIMESTAMP columns as TIMESTAMP(MICROS) (an instant every reader keeps the time
    zone of), then the session's own setting back."""
    with session_setting(spark, OUTPUT_TIMESTAMP_TYPE, "TIMESTAMP_MICROS"):
        yield


@contextlib.contextmanager
def session_setting(spark: SparkSession, key: str, value: str):
    """`key` set to `value` for the jobs run inside the block (Spark reads a setting when a job is planned), then the
    session's own setting back: our jobs own their session, a library call must not change a user's."""
    before = spark.conf.get(key, None)
    spark.conf.set(key, value)
    try:
        yield
    finally:
        if before is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, before)
