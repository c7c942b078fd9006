"""The `files` strategy: Spark schedules the work, the rows never pass through the JVM.

The driver lists the input's Parquet files and row groups (scoring.files.slices) and makes one task per slice; each
task reads its slice with pyarrow, binds the columns by name exactly as the other strategies do, predicts, and writes
its own Parquet part into the job's staging folder (scoring.files.executor). Tasks hand back counts and part names; the
driver checks rows out == rows in for every slice before the staged result is committed (scoring.batch.output).

An input of a single slice is scored in the driver, which has loaded the model already: no Python worker starts
and the model is not loaded a second time (the fixed cost of a small job).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import pyarrow as pa
from mlflow.models.model import ModelInfo
from pyspark.sql import SparkSession
from pyspark.sql import types as T
from pyspark.sql.pandas.types import to_arrow_type

from common import spark_compat
from common.arrow_fs import filesystem_and_path
from common.datasets import spark_format
from common.errors import UserInputError
from common.model_uri import ResolvedModel
from scoring.batch.dataframe import SCORED_AT, SCORED_AT_ARROW_TYPE, bind_and_plan, kept_inputs, scoring_time
from scoring.batch.plan import driver_model
from scoring.batch.strategies import may_use, not_applicable, probability_type
from scoring.files.column_types import output_type, spark_schema, uncarried_column
from scoring.files.executor import FileTask, SliceResult, part_name, score_slice
from scoring.files.slices import InputFiles, NotApplicable, Slice, cut_slices, list_parquet_input
from scoring.per_group_guard import group_column

_logger = logging.getLogger(__name__)
NAME = "files"  # its row in scoring.batch.strategies.STRATEGY_TABLE


@dataclass(frozen=True)
class FilesPlan:
    """A `files` job checked and planned on the driver, before anything is written."""

    input: InputFiles
    task: FileTask
    slices: tuple[Slice, ...]
    model: ResolvedModel
    model_dir: str  # the driver's copy, which scores a one-slice input
    model_size_bytes: int
    strategy: str = NAME


def list_files_input(strategy: str, input: str, input_format: str, features_column: str | None):
    """(InputFiles, None) when the `files` strategy can read this input, else (None, why not). Needs no model and
    no Spark: a job decides from it whether to start Spark at all."""
    if not may_use(strategy, NAME):
        return None, f"strategy {strategy} was asked for"
    fmt = spark_format(input, input_format)
    if features_column:
        reason = "the features come from one array / vector column"
    elif fmt != "parquet":
        reason = f"{fmt.upper()} input is parsed by Spark"
    else:
        try:
            files = list_parquet_input(input)
        except NotApplicable as exc:
            reason = str(exc)
        else:
            reason = uncarried_column(files.schema)
            if reason is None:
                return files, None
    return _refused(strategy, reason)


def files_model(strategy: str, files: InputFiles | None, reason: str | None, info: ModelInfo):
    """The same answer once the model is known: an MLlib model scores in the JVM, and a per-group model's groups
    are checked by Spark first."""
    if files is None:
        return None, reason
    if "spark" in info.flavors:
        return _refused(strategy, "an MLlib model scores in the JVM")
    if group_column(info.metadata):
        return _refused(strategy, "a per-group model checks its groups with Spark first")
    return files, None


def _refused(strategy: str, reason: str):
    return None, not_applicable(strategy, NAME, reason)


def scored_in_driver(files: InputFiles, slice_rows: int | None) -> bool:
    """One slice whatever the cores: the driver scores it, and the job needs no Spark."""
    return files.rows <= (slice_rows or files.min_slice_rows)


def plan_files(
    spark: SparkSession | None,
    files: InputFiles,
    resolved: ResolvedModel,
    info: ModelInfo,
    staging: str,
    slice_rows: int | None = None,
    keep_features: bool = False,
) -> FilesPlan:
    """Bind the first file's columns to the signature by name (the same checks and messages as every strategy),
    plan the model once, and cut the slices. `keep_features`: the model's inputs are written beside predictions."""
    schema = _SchemaOnly(spark_schema(files.schema))
    binding, planned = bind_and_plan(spark, schema, resolved, info, keep=kept_inputs(info, keep_features))
    plan = planned.plan
    present = set(files.schema.names)
    passthrough_types = tuple(files.schema.field(name).type for name in binding.passthrough)
    output_fields = [
        pa.field(name, output_type(t)) for name, t in zip(binding.passthrough, passthrough_types, strict=True)
    ]
    output_fields.append(pa.field("prediction", plan.prediction_type))
    if plan.probability:
        output_fields.append(pa.field("probability", to_arrow_type(probability_type(plan.probability))))
    output_fields += [pa.field("model_name", pa.string()), pa.field("model_version", pa.string())]
    output_fields.append(pa.field(SCORED_AT, SCORED_AT_ARROW_TYPE))
    output_filesystem, staging_path = filesystem_and_path(staging)
    task = FileTask(
        plan=plan,
        filesystem=files.filesystem,
        output_filesystem=output_filesystem,
        staging=staging_path,
        passthrough_types=passthrough_types,
        feature_types=tuple(
            to_arrow_type(t) if name in present else None
            for name, t in zip(binding.features, binding.types, strict=True)
        ),
        output_schema=pa.schema(output_fields),
        model_name=resolved.model_name,
        model_version=resolved.model_version,
        scored_at=scoring_time(),  # one time for the job's every slice, as a Spark scoring job has
    )
    parallelism = spark_compat.default_parallelism(spark) if spark is not None else 1
    slices = cut_slices(files, parallelism, slice_rows)
    return FilesPlan(files, task, tuple(slices), resolved, str(planned.model_dir), planned.size_bytes)


class _SchemaOnly:
    """What binding reads of a DataFrame: its schema and column names."""

    def __init__(self, schema: T.StructType):
        self.schema = schema
        self.columns = schema.names


def files_dataset(files: InputFiles, input: str):
    """The input as an MLflow dataset without reading it: its path (a Spark source, as the other strategies log
    it), its schema, and a digest of every file's path, size, modification time and row groups."""
    import hashlib
    import json
    import warnings

    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.data.spark_dataset_source import SparkDatasetSource
    from mlflow.types.utils import _infer_schema

    listing = [files.paths, files.stamps, files.row_groups, str(files.schema)]
    digest = hashlib.md5(json.dumps(listing).encode(), usedforsecurity=False).hexdigest()[:8]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*integer column.*")  # a hint about signatures, not datasets
        schema = _infer_schema(files.schema.empty_table().to_pandas())
    return MetaDataset(SparkDatasetSource(path=input), digest=digest, schema=schema)


def run_files(spark: SparkSession | None, planned: FilesPlan) -> int:
    """Score every slice into the staging folder; returns rows out once every slice has given back all its rows.
    Raises (naming the file and column for bad input) with the staging folder left for the caller to remove."""
    task, slices = planned.task, planned.slices
    task.output_filesystem.create_dir(task.staging, recursive=True)
    if len(slices) == 1:
        model = driver_model(planned.model_dir, task.plan.flavor)
        results = [_in_driver(task, slices[0], model)]
    else:
        results = _on_spark(spark, task, slices)
    rows_out = _check_results(slices, results, planned.input)
    _tidy_staging(task, slices)
    return rows_out


def _in_driver(task: FileTask, piece_slice: Slice, model) -> SliceResult:
    from scoring.files.executor import SliceError

    try:
        return score_slice(task, piece_slice, model)
    except SliceError as exc:
        raise UserInputError(str(exc)) from exc


def _on_spark(spark: SparkSession, task: FileTask, slices: tuple[Slice, ...]) -> list[SliceResult]:
    """One partition, so one task, per slice; a task's failure names its file and column (SliceError)."""

    def run_slice(indexed):
        for piece_slice in indexed:
            yield score_slice(task, piece_slice)

    try:
        return spark_compat.run_per_item(spark, list(slices), run_slice)
    except Exception as exc:  # noqa: BLE001 - Py4J wraps the worker's exception in the job's failure
        found = re.search(r"SliceError: (.+)", str(exc))
        if found:
            raise UserInputError(found.group(1).strip()) from None
        raise


def _check_results(slices: tuple[Slice, ...], results: list[SliceResult], files: InputFiles) -> int:
    """Every slice exactly once, with every row its footers promised, in and out."""
    by_index = {result.index: result for result in results}
    if sorted(by_index) != [s.index for s in slices] or len(results) != len(slices):
        raise RuntimeError(f"{len(results)} slice results for {len(slices)} slices; nothing is committed")
    for piece_slice in slices:
        result = by_index[piece_slice.index]
        if not (result.rows_in == result.rows_out == piece_slice.rows):
            raise RuntimeError(
                f"slice {piece_slice.index} ({', '.join(p.path for p in piece_slice.pieces)}): {result.rows_in} rows "
                f"read and {result.rows_out} written of {piece_slice.rows}; nothing is committed"
            )
    rows = sum(result.rows_out for result in results)
    if rows != files.rows:
        raise RuntimeError(f"{rows} rows scored of {files.rows}; nothing is committed")
    return rows


def _tidy_staging(task: FileTask, slices: tuple[Slice, ...]) -> None:
    """Only the parts of this job's slices stay (a failed attempt's hidden temporary file goes), and Spark's
    success marker is written as Spark's own writer does."""
    import pyarrow.fs as pafs

    fs = task.output_filesystem
    expected = {part_name(s.index) for s in slices}
    for entry in fs.get_file_info(pafs.FileSelector(task.staging)):
        if entry.base_name not in expected:
            fs.delete_file(entry.path)
    missing = expected - {e.base_name for e in fs.get_file_info(pafs.FileSelector(task.staging))}
    if missing:
        raise RuntimeError(f"part file(s) {sorted(missing)[:3]} missing from {task.staging}; nothing is committed")
    with fs.open_output_stream(f"{task.staging}/_SUCCESS"):
        pass
