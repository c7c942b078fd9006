"""Read the files of one micro-batch into the stream's fixed schema, and set aside what does not fit.

Each file is read on its own and bound to the schema **by column name** (a CSV's column order or a Parquet file's
integer widths never matter). A file that cannot be read, or lacks a column, or holds a column of a type that does
not convert, is quarantined whole. In CSV and JSON every value is read as text and converted here: a value that
does not convert quarantines its row, with the column, the value and the expected type, instead of being scored as
null.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import reduce

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from common.columns import col
from common.datasets import CSV_OPTIONS
from common.errors import UserInputError
from common.parquet_time import read_parquet
from scoring.input_schema import converts, require_named_signature

REASON = "_quarantine_reason"
SOURCE_FILE = "_source_file"
TEXT_FORMATS = ("csv", "json")


@dataclass(frozen=True)
class StreamSchema:
    """The columns every input row must have: ids first, then the model's features, each with its Spark type."""

    ids: T.StructType
    features: T.StructType
    # Carried columns taken from the files present at start rather than declared: a later file that lacks one is
    # scored with nulls there, not quarantined (nobody asked for the column).
    ids_optional: bool = False

    @property
    def fields(self) -> list[T.StructField]:
        return [*self.ids.fields, *self.features.fields]

    @property
    def names(self) -> set[str]:
        return {f.name for f in self.fields}


def stream_schema(
    spark: SparkSession, signature, model_label: str, ids: str | None, schema: str | None
) -> StreamSchema:
    """From the model's signature plus declared id columns (`ids`, DDL), or from a full schema the user passes;
    never from whichever file arrives first."""
    signature = require_named_signature(signature, model_label)
    features = T.StructType([T.StructField(c.name, c.type.to_spark()) for c in signature.inputs.inputs])
    if schema:
        given = _parse(spark, schema, "schema")
        missing = [f.name for f in features.fields if f.name not in given.fieldNames()]
        if missing:
            raise UserInputError(f"schema lacks the model's feature column(s): {', '.join(missing)}")
        bad = [
            f"{f.name} is {given[f.name].dataType.simpleString()}, the model expects {f.dataType.simpleString()}"
            for f in features.fields
            if not converts(given[f.name].dataType, f.dataType)
        ]
        if bad:
            raise UserInputError("schema does not match the model: " + "; ".join(bad))
        return StreamSchema(T.StructType([f for f in given.fields if f.name not in features.fieldNames()]), features)
    declared = _parse(spark, ids, "ids") if ids else T.StructType([])
    clash = [f.name for f in declared.fields if f.name in features.fieldNames()]
    if clash:
        raise UserInputError(f"id column(s) {', '.join(clash)} are model features; list only the other columns")
    return StreamSchema(declared, features)


def _parse(spark: SparkSession, ddl: str, what: str) -> T.StructType:
    try:
        parsed = T.StructType.fromDDL(ddl)
    except Exception as exc:  # the JVM's parser error, whatever its class
        raise UserInputError(f"{what} is not a DDL column list such as 'id BIGINT, region STRING': {ddl!r}") from exc
    return parsed if isinstance(parsed, T.StructType) else T.StructType([T.StructField("value", parsed)])


@dataclass
class BatchInput:
    frames: list[tuple[str, DataFrame]]  # (path, rows: the schema's columns + REASON (null: scorable) + SOURCE_FILE)
    bad_files: list[tuple[str, str]]  # (path, reason)
    undeclared: dict[str, list[str]] = field(default_factory=dict)  # path -> columns the stream's schema lacks

    @property
    def rows(self) -> DataFrame | None:
        """All files' rows; None when no file could be read. Parquet files bring no raw text columns, CSV and JSON
        files do (kept for their quarantined rows)."""
        frames = [frame for _, frame in self.frames]
        return reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames) if frames else None


def read_batch(spark: SparkSession, paths: list[str], fmt: str, schema: StreamSchema) -> BatchInput:
    """Bind each file to the schema; files whose header, footer or columns are wrong are set aside here."""
    frames, bad_files, undeclared = [], [], {}
    for path in paths:
        try:
            raw = _read_raw(spark, path, fmt)
            frames.append((path, _bind(raw, path, fmt, schema)))
        except _FileProblem as problem:
            bad_files.append((path, str(problem)))
        except Exception as exc:  # Spark's own errors for unreadable files come in many classes
            bad_files.append((path, f"unreadable as {fmt}: {_first_line(exc)}"))
        else:
            extra = [c for c in raw.columns if c not in schema.names]
            if extra:
                undeclared[path] = extra
    return BatchInput(frames, bad_files, undeclared)


def without_unreadable(batch: BatchInput, fmt: str) -> BatchInput:
    """After the batch's rows failed to load: read each file through to find the ones whose data is corrupt
    (their header or footer was fine), and set those aside too. Only run on failure: it reads every file again."""
    frames, bad_files = [], list(batch.bad_files)
    for path, frame in batch.frames:
        try:
            frame.write.format("noop").mode("overwrite").save()
        except Exception as exc:
            bad_files.append((path, f"unreadable as {fmt}: {_first_line(exc)}"))
        else:
            frames.append((path, frame))
    return BatchInput(frames, bad_files, batch.undeclared)


class _FileProblem(Exception):
    pass


def _read_raw(spark: SparkSession, path: str, fmt: str) -> DataFrame:
    if fmt == "parquet":  # nanosecond timestamps as microseconds; a file holding finer values is set aside
        return read_parquet(spark, path)
    if fmt == "csv":
        return spark.read.options(**CSV_OPTIONS).option("inferSchema", "false").csv(path)
    return spark.read.option("primitivesAsString", "true").json(path)


def _bind(raw: DataFrame, path: str, fmt: str, schema: StreamSchema) -> DataFrame:
    if schema.ids_optional:
        absent = [f for f in schema.ids.fields if f.name not in raw.columns]
        raw = raw.withColumns({f.name: F.lit(None).cast(f.dataType) for f in absent}) if absent else raw
    missing = [f.name for f in schema.fields if f.name not in raw.columns]
    if missing:
        raise _FileProblem(f"missing column(s) {', '.join(missing)}")
    if fmt == "parquet":
        wrong = [
            f"column {f.name} is {raw.schema[f.name].dataType.simpleString()}, expected {f.dataType.simpleString()}"
            for f in schema.fields
            if not converts(raw.schema[f.name].dataType, f.dataType)
        ]
        if wrong:
            raise _FileProblem("; ".join(wrong))
        typed = [col(f.name).cast(f.dataType).alias(f.name) for f in schema.fields]
        return raw.select(*typed, F.lit(None).cast("string").alias(REASON), F.lit(path).alias(SOURCE_FILE))
    # Text formats: convert each value; a value that does not convert explains why its row is quarantined.
    typed = [col(f.name).try_cast(f.dataType).alias(f.name) for f in schema.fields]
    problems = [
        F.when(
            col(f.name).isNotNull() & col(f.name).try_cast(f.dataType).isNull(),
            F.concat(F.lit(f"column {f.name}: "), col(f.name), F.lit(f" is not {f.dataType.simpleString()}")),
        )
        for f in schema.fields
    ]
    reason = F.nullif(F.concat_ws("; ", *problems), F.lit(""))
    return raw.select(
        *[col(f.name).alias(f"_raw_{f.name}") for f in schema.fields], *typed, reason.alias(REASON)
    ).withColumn(SOURCE_FILE, F.lit(path))


def raw_columns(rows: DataFrame) -> list[str]:
    return [c for c in rows.columns if c.startswith("_raw_")]


def _first_line(exc: Exception) -> str:
    """The JVM's own message where there is one (py4j's says only which call failed)."""
    java = getattr(exc, "java_exception", None)
    text = java.toString() if java is not None else str(exc)
    lines = text.strip().splitlines()
    return lines[0][:500] if lines else type(exc).__name__
