"""What one `files` task does in a Python worker (or, for a one-slice input, in the driver): read its slice with
pyarrow, bind and cast the features by name, predict, and write its own Parquet part. Rows never pass through the
JVM; the task hands back only counts and the part's name.

A part's name comes from its slice, and it is written under a hidden temporary name then moved into place: a
retried (or speculative) attempt replaces its own part and never adds a second one.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass

from scoring.batch.executor import ScoringPlan, arrow_outputs, features_from_arrow, load_cached, predict
from scoring.files.slices import Piece, Slice


@dataclass(frozen=True)
class FileTask:
    """Everything a task needs, pickled with it (names, Arrow types and a file system handle; never the model)."""

    plan: ScoringPlan
    filesystem: object  # pyarrow.fs.FileSystem of the input (pickles with its options and credentials source)
    output_filesystem: object  # pyarrow.fs.FileSystem of the staging folder
    staging: str  # the job's staging folder in output_filesystem
    passthrough_types: tuple  # Arrow type of each pass-through column, as the first file has it
    feature_types: tuple  # Arrow type the model's signature wants for each feature (None: optional and absent)
    output_schema: object  # pyarrow.Schema of every part
    model_name: str | None
    model_version: str | None
    scored_at: object  # datetime (UTC): the job's scoring time, on every row of every part


@dataclass(frozen=True)
class SliceResult:
    index: int
    rows_in: int
    rows_out: int
    part: str


class SliceError(Exception):
    """Bad input found by a task: the message names the file and the column."""


def part_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def score_slice(task: FileTask, piece_slice: Slice, model=None) -> SliceResult:
    """`model`: the driver's own copy for a slice scored in the driver; workers use their cached copy."""
    import pyarrow.parquet as pq

    fs, out, plan = task.filesystem, task.output_filesystem, task.plan
    if model is None:
        model = load_cached(plan.model_key, plan.flavor)
    part = part_name(piece_slice.index)
    temporary = f"{task.staging}/.{part}.{uuid.uuid4().hex[:8]}.tmp"
    rows_in = rows_out = 0
    try:
        with out.open_output_stream(temporary) as stream, pq.ParquetWriter(stream, task.output_schema) as writer:
            for piece in piece_slice.pieces:
                for batch in _read_piece(fs, piece, task):
                    rows_in += batch.num_rows
                    columns = dict(zip(batch.schema.names, batch.columns, strict=True))
                    scored = _scored_batch(model, columns, task, piece.path)
                    writer.write_batch(scored)
                    rows_out += scored.num_rows
    except BaseException:
        _remove_quietly(out, temporary)  # a killed process leaves it instead: the driver removes it before commit
        raise
    out.move(temporary, f"{task.staging}/{part}")
    return SliceResult(piece_slice.index, rows_in, rows_out, part)


def _remove_quietly(filesystem, path: str) -> None:
    with contextlib.suppress(OSError):
        filesystem.delete_file(path)


def _read_piece(fs, piece: Piece, task: FileTask):
    """The piece's rows in batches of the plan's size, only the columns scoring reads."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    plan = task.plan
    try:
        handle = fs.open_input_file(piece.path)
    except FileNotFoundError as exc:
        raise SliceError(f"input file {piece.path} vanished after the input was listed") from exc
    with handle:
        try:
            parquet = pq.ParquetFile(handle)
        except (pa.ArrowInvalid, OSError) as exc:
            raise SliceError(f"input file {piece.path} is not a Parquet file: {exc}") from exc
        wanted = _columns_read(task)
        _check_columns(parquet.schema_arrow, wanted, task, piece.path)
        names = [name for name in wanted if name in parquet.schema_arrow.names]
        if piece.offset is None:
            groups = list(piece.row_groups)
            yield from parquet.iter_batches(batch_size=plan.chunk_rows, row_groups=groups, columns=names)
            return
        table = parquet.read_row_group(piece.row_groups[0], columns=names).slice(piece.offset, piece.rows)
        yield from table.to_batches(max_chunksize=plan.chunk_rows)


def _columns_read(task: FileTask) -> list[str]:
    plan = task.plan
    return list(dict.fromkeys([*plan.passthrough, *plan.features]))


def _check_columns(schema, wanted: list[str], task: FileTask, path: str) -> None:
    """This file against the first file's pass-through types and the signature's feature types."""

    plan = task.plan
    expected = dict(zip(plan.passthrough, task.passthrough_types, strict=True))
    wants = dict(zip(plan.features, task.feature_types, strict=True))
    for name in wanted:
        index = schema.get_field_index(name)
        if index < 0:
            if name in wants and wants[name] is None:
                continue  # an optional input, absent from every file
            raise SliceError(f"input file {path}: column {name!r} is missing")
        found = schema.field(index).type
        if name in expected and name not in wants and found != expected[name]:
            raise SliceError(
                f"input file {path}: column {name!r} is {found} here and {expected[name]} in the input's first file"
            )
        if name in wants and wants[name] is not None and found != wants[name]:
            _check_converts(found, wants[name], name, path)


def _check_converts(found, wanted, name: str, path: str) -> None:
    """The rule every strategy binds by (scoring.input_schema.converts): only casts that lose nothing."""
    from pyspark.sql.pandas.types import from_arrow_type

    from scoring.input_schema import converts

    try:
        found_type = from_arrow_type(found)
    except (TypeError, ValueError) as exc:
        raise SliceError(f"input file {path}: column {name!r} has a type Spark does not read: {found}") from exc
    target = from_arrow_type(wanted)
    if not converts(found_type, target):
        raise SliceError(
            f"input file {path}: column {name!r} is {found_type.simpleString()}, which does not convert to the "
            f"model's {target.simpleString()}"
        )


def _scored_batch(model, columns: dict, task: FileTask, path: str):
    import pyarrow as pa

    plan = task.plan
    rows = len(next(iter(columns.values()))) if columns else 0
    features = {}
    for name, target in zip(plan.features, task.feature_types, strict=True):
        features[name] = _cast(columns[name], target, name, path) if name in columns else pa.nulls(rows, target)
    outputs = [
        _carried(features[name] if name in features else columns[name], task.output_schema.field(i).type, name, path)
        for i, name in enumerate(plan.passthrough)
    ]
    if rows:
        prediction, proba = predict(model, features_from_arrow(features, plan), plan)
        outputs += arrow_outputs(prediction, proba, plan)
    else:
        outputs += [pa.array([], type=field.type) for field in task.output_schema[len(outputs) : -3]]
    outputs += [
        pa.nulls(rows, pa.string()) if v is None else pa.array([v] * rows, pa.string())
        for v in (task.model_name, task.model_version)
    ]
    outputs.append(pa.array([task.scored_at] * rows, type=task.output_schema.field(-1).type))
    return pa.RecordBatch.from_arrays(outputs, schema=task.output_schema)


def _carried(array, target, name: str, path: str):
    """A pass-through column as the output holds it (scoring.files.column_types): a nanosecond timestamp as
    microseconds, refused (naming the file and the column) if a value has nanoseconds."""
    import pyarrow as pa

    if array.type == target:
        return array
    try:
        return array.cast(target)  # a safe cast: it fails rather than drop the nanoseconds
    except pa.ArrowInvalid as exc:
        from common.parquet_time import sub_microsecond_message

        raise SliceError(f"input file {path}: {sub_microsecond_message(name)} ({exc})") from exc


def _cast(array, target, name: str, path: str):
    """Spark's cast to the signature type (only widening casts are let through on the driver); a value that does not
    fit fails naming the file and the column."""
    import pyarrow as pa

    if array.type == target:
        return array
    try:
        return array.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise SliceError(f"input file {path}: column {name!r}: {exc}") from exc
