"""Which columns besides the model's features a stream carries to its output, chosen once and kept.

`score_batch` keeps every input column that is not a feature (ids, timestamps) beside the prediction; a stream
does the same. The columns are declared (`ids` or `schema`), or, when neither is given, taken from the files
present when the stream first starts. The choice is kept in the checkpoint, so a restart writes the same output
schema; a later file that brings another column is scored, and the column is counted and named, not carried.
"""

from __future__ import annotations

import logging

from pyspark.sql import SparkSession
from pyspark.sql import types as T

from common.datasets import read_spark_table
from common.errors import UserInputError
from common.hadoop_fs import ArrowFS, HadoopFS, files_for
from scoring.batch.dataframe import OUTPUT_COLUMNS
from scoring.stream.landed_files import StreamSchema, stream_schema
from scoring.stream.state import StreamState

_logger = logging.getLogger(__name__)
_FILES_TO_INFER_FROM = 20  # reading every footer of a large landing folder at start would cost minutes
# Columns a scored stream writes itself; an input column of the same name would be overwritten.
STREAM_OUTPUT_COLUMNS = (*OUTPUT_COLUMNS, "batch_id")


def choose_stream_schema(
    spark: SparkSession,
    state: StreamState,
    input_folder: str,
    fmt: str,
    signature,
    model_label: str,
    ids: str | None,
    schema: str | None,
) -> tuple[StreamSchema, str]:
    """The stream's schema and where its carried columns came from (declared / checkpoint / inferred)."""
    declared = stream_schema(spark, signature, model_label, ids, schema)
    recorded = state.carried_columns()
    if recorded is None and state.run_id() is not None:
        # A stream started before streams carried columns: it carried none, and goes on so.
        recorded = (T.StructType([]), False)
    if ids or schema:
        if recorded is not None and _described(recorded[0]) != _described(declared.ids):
            raise UserInputError(
                f"this checkpoint's stream carries the column(s) {_described(recorded[0]) or 'none'}; the declared "
                f"ones ({_described(declared.ids) or 'none'}) would change its output's schema: keep them, or "
                "start a new checkpoint and output"
            )
        chosen, source = declared, "declared"
    elif recorded is not None:
        columns, was_declared = recorded
        now_features = [f.name for f in columns.fields if f.name in declared.features.fieldNames()]
        if now_features:
            raise UserInputError(
                f"this checkpoint's stream carries column(s) {', '.join(now_features)}, which model {model_label} "
                "takes as features; start a new checkpoint and output for it"
            )
        chosen, source = StreamSchema(columns, declared.features, ids_optional=not was_declared), "checkpoint"
    else:
        inferred, looked = infer_ids(spark, files_for(spark, input_folder), fmt, declared.features)
        chosen = StreamSchema(inferred, declared.features, ids_optional=True)
        source = f"inferred from {looked} file(s) present at start"
        if not looked:
            _logger.warning(
                "no %s files in %s at start: the stream carries only the prediction; columns that later files "
                "bring besides the features are counted and named, not carried (declare them with ids=...)",
                fmt,
                input_folder,
            )
    clash = [name for name in chosen.ids.fieldNames() if name in STREAM_OUTPUT_COLUMNS]
    if clash:
        raise UserInputError(
            f"input column(s) {', '.join(clash)} have the name of a column the stream writes "
            f"({', '.join(STREAM_OUTPUT_COLUMNS)}); rename them in the files, or leave them out with schema=..."
        )
    if state.carried_columns() is None:
        state.record_carried_columns(chosen.ids, declared=not chosen.ids_optional)
    _logger.info("carrying column(s) %s to the output (%s)", _described(chosen.ids) or "none", source)
    return chosen, source


def infer_ids(
    spark: SparkSession, input_fs: HadoopFS | ArrowFS, fmt: str, features: T.StructType
) -> tuple[T.StructType, int]:
    """The columns besides the model's features that every file present at start holds (the oldest
    `_FILES_TO_INFER_FROM`), in the first file's order and with the types a batch job reads them with.
    Returns (columns, files looked at)."""
    files = sorted(
        (entry for entry in input_fs.listing(input_fs.root) if is_data_file(entry[0], fmt)),
        key=lambda entry: (entry[2], entry[0]),  # modification time, then name
    )[:_FILES_TO_INFER_FROM]
    common: T.StructType | None = None
    for _name, uri, _modified in files:
        try:
            found = read_spark_table(spark, uri, fmt).schema  # as score_batch reads it
        except Exception:  # an unreadable file says nothing about the columns; the stream quarantines it later
            continue
        if common is None:
            common = T.StructType([f for f in found.fields if f.name not in features.fieldNames()])
        else:
            common = T.StructType([f for f in common.fields if f.name in found.fieldNames()])
    return common or T.StructType([]), len(files)


def is_data_file(name: str, fmt: str) -> bool:
    """The files the stream's source picks up: `*.<format>`, not hidden the way Spark hides files."""
    return name.endswith(f".{fmt}") and not name.startswith((".", "_"))


def _described(columns: T.StructType) -> str:
    return ", ".join(f"{f.name} {f.dataType.simpleString()}" for f in columns.fields)
