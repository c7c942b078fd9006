"""Read the table to score, turning Spark's path and format errors into messages that name the input."""

from __future__ import annotations

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession

from lifecycle.errors import UserInputError

FORMATS = ("parquet", "csv", "json")


def input_format(path: str, fmt: str = "auto") -> str:
    if fmt != "auto":
        if fmt not in FORMATS:
            raise UserInputError(f"unknown input format {fmt!r}; choose auto or one of: {', '.join(FORMATS)}")
        return fmt
    suffix = path.rstrip("/").rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    return suffix if suffix in FORMATS else "parquet"


def read_table(spark: SparkSession, path: str, fmt: str = "auto") -> DataFrame:
    fmt = input_format(path, fmt)
    reader = spark.read
    if fmt == "csv":
        reader = reader.option("header", "true").option("inferSchema", "true")
    try:
        return reader.format(fmt).load(path)
    except AnalysisException as exc:
        raise UserInputError(f"cannot read input {path!r} as {fmt}: {exc.getMessage().splitlines()[0]}") from exc
