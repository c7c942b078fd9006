"""Entry point `score_batch`: score a Parquet/CSV table with a model URI and write Parquet.

python -m scoring.batch.score_batch --model-uri models:/cancer/production --input in.parquet --output out.parquet
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import mlflow
from pyspark.sql import SparkSession

from common.cli import run_cli
from common.datasets import SPARK_FORMATS, read_spark_table, spark_format
from common.errors import UserInputError
from common.job import LAZY_SPARK, EntryPoint, spark_starter
from common.model_uri import ResolvedModel, resolve_model_uri
from common.params import logged_params, param
from common.parquet_time import check_microseconds, microsecond_parquet_output
from common.settings import Settings
from common.spark import SparkStarter
from common.tracking import log_dataset, log_new_params, spark_dataset, tracked_run
from scoring.batch.dataframe import ScoredFrame, model_info, score_resolved
from scoring.batch.model_shipping import prefetch_model
from scoring.batch.model_size import DEFAULT_WARN_FRACTION, executor_memory, warn_if_large
from scoring.batch.output import StagedOutput
from scoring.batch.plan import arrow_batch_rows, driver_model
from scoring.batch.spark_flavor import UNSEEN_ROWS
from scoring.batch.strategies import BATCH_STRATEGIES, check_strategy
from scoring.files.strategy import (
    files_dataset,
    files_model,
    list_files_input,
    plan_files,
    run_files,
    scored_in_driver,
)

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchResult:
    run_id: str
    model: ResolvedModel
    rows_in: int
    rows_out: int
    output: str
    seconds: float

    def summary(self) -> str:
        return (
            f"scored {self.rows_in} rows in, {self.rows_out} rows out with {self.model.label} "
            f"({self.rows_in / self.seconds:,.0f} rows/s) -> {self.output}"
        )


@dataclass(frozen=True)
class ScoreBatchParams:
    model_uri: str = param(help="models:/<name>/<stage|version>, models:/<name>@<alias>, runs:/...")
    input: str = param(help="Parquet (file or folder), CSV or JSON")
    output: str = param(help="Parquet folder to create")
    input_format: str = param("auto", choices=("auto", *SPARK_FORMATS))
    overwrite: bool = param(False, help="replace an existing output (atomically)")
    strategy: str = param("auto", help=f"scoring path: {', '.join(BATCH_STRATEGIES)}")
    features_column: str | None = param(
        None, help="one array / MLlib vector column holding the features in the signature's order (wide models)"
    )
    slice_rows: int = param(
        0,
        help="strategy files: rows per Spark task (0: rows / cores, 1M values at least; one slice: in the driver)",
    )
    keep_features: bool = param(
        False, help="also write the model's input columns beside each prediction: an inference table monitor profiles"
    )


@dataclass(frozen=True)
class _Job:
    """A job checked and planned, nothing written yet: how it writes, and what its run records."""

    session: SparkSession | None  # None: scored in the driver, no Spark started
    staged: StagedOutput
    rows_in: int
    strategy: str
    write: Callable[[], int]  # scores into the staging folder; returns rows out
    model_size_bytes: int | None
    dataset: object  # the input as an MLflow dataset
    observation: object = None  # counts an MLlib transform gathers while it is written


def run(
    spark: SparkSession | SparkStarter,
    settings: Settings,
    params: ScoreBatchParams,
    memory_warn_fraction: float = DEFAULT_WARN_FRACTION,
) -> BatchResult:
    """Everything that can be checked is checked before the tracking run and before any output is written.

    `spark`: a session, or a starter that starts one only when the job needs it (a small `files` job does not).
    `features_column`: take the features from one array / MLlib vector column (in the signature's order).
    `memory_warn_fraction`: warn when the Python workers' model copies pass this fraction of executor memory."""
    p = params
    check_strategy(p.strategy, BATCH_STRATEGIES)
    if p.slice_rows < 0:
        raise UserInputError(f"slice_rows must be 0 (about rows / cores) or a number of rows, got {p.slice_rows}")
    sessions = spark_starter(spark)
    files, not_files = list_files_input(p.strategy, p.input, p.input_format, p.features_column)
    if files is None or not scored_in_driver(files, p.slice_rows):
        sessions.start_in_background()  # the JVM starts while the model is resolved and loaded
    resolved = resolve_model_uri(mlflow.MlflowClient(), p.model_uri)
    info = model_info(mlflow.get_tracking_uri(), resolved.load_uri)
    files, not_files = files_model(p.strategy, files, not_files, info)
    if files is not None:
        job = _files_job(sessions, p, files, resolved, info)
    else:  # why not `files` was logged when it was ruled out (scoring.batch.strategies.not_applicable)
        job = _spark_job(sessions.get(), p, resolved)

    with tracked_run(settings, run_name="score_batch") as active:
        log_new_params(
            {
                **logged_params(p),
                "resolved_model_uri": resolved.load_uri,
                "model_name": resolved.model_name,
                "model_version": resolved.model_version,
                "scoring_path": job.strategy,
            }
        )
        _log_model_size(job.session, job.model_size_bytes, resolved.label, memory_warn_fraction)
        log_dataset(job.dataset, context="scoring")
        started = time.perf_counter()
        try:
            rows_out = job.write()
        except Exception:
            job.staged.abort()
            raise
        seconds = time.perf_counter() - started
        rows_in = job.rows_in
        if rows_out != rows_in:
            job.staged.abort()
            raise RuntimeError(f"scored {rows_out} rows from {rows_in} input rows; nothing was written to {p.output}")
        final = job.staged.commit()
        mlflow.log_metrics(
            {
                "rows_in": rows_in,
                "rows_out": rows_out,
                "seconds": seconds,
                "rows_per_second": rows_in / seconds,
            }
        )
        if job.observation is not None:
            observed = {k: int(v or 0) for k, v in job.observation.get.items()}
            mlflow.log_metrics(observed)
            if observed.get(UNSEEN_ROWS):
                _logger.warning("%d row(s) held categories unseen in training: %s", observed[UNSEEN_ROWS], observed)
        _logger.info("scored %d rows with %s in %.1fs -> %s", rows_in, resolved.label, seconds, final)
        return BatchResult(active.info.run_id, resolved, rows_in, rows_out, final, seconds)


def _files_job(sessions: SparkStarter, p: ScoreBatchParams, files, resolved: ResolvedModel, info) -> _Job:
    _refuse_empty(files.rows, p.input)
    in_driver = scored_in_driver(files, p.slice_rows)
    _fetch_model(resolved, info)
    session = None if in_driver else sessions.get()
    staged = StagedOutput(session, p.output, p.overwrite)
    planned = plan_files(session, files, resolved, info, staged.staging_uri, p.slice_rows, p.keep_features)
    where = "in the driver" if in_driver else f"in {len(planned.slices)} Spark tasks"
    _logger.info("scoring path files: %d rows of %d file(s), %s", files.rows, len(files.paths), where)
    write = partial(run_files, session, planned)
    return _Job(session, staged, files.rows, "files", write, planned.model_size_bytes, files_dataset(files, p.input))


def _spark_job(session: SparkSession, p: ScoreBatchParams, resolved: ResolvedModel) -> _Job:
    df = read_spark_table(session, p.input, p.input_format)
    if spark_format(p.input, p.input_format) == "parquet":
        check_microseconds(session, p.input)  # a nanosecond Spark cannot hold: refused now, in one line
    rows_in = df.count()
    _refuse_empty(rows_in, p.input)
    scored = score_resolved(session, df, resolved, p.strategy, p.features_column, keep_features=p.keep_features)
    staged = StagedOutput(session, p.output, p.overwrite)
    return _Job(
        session,
        staged,
        rows_in,
        scored.strategy,
        partial(_write_frame, session, scored, staged),
        scored.model_size_bytes,
        spark_dataset(df, p.input, p.input, None, rows=rows_in),
        scored.observation,
    )


def _refuse_empty(rows: int, input: str) -> None:
    if rows == 0:
        raise UserInputError(f"input {input!r} has no rows")


def _write_frame(spark: SparkSession, scored: ScoredFrame, staged: StagedOutput) -> int:
    """Spark writes the scored frame; the rows out are counted from what was written."""
    with arrow_batch_rows(spark, scored.batch_rows), microsecond_parquet_output(spark):
        staged.write(scored.frame, lambda frame, path: frame.write.parquet(path))
    return spark.read.parquet(staged.staging_uri).count()


def _log_model_size(spark: SparkSession | None, size_bytes: int | None, label: str, warn_fraction: float) -> None:
    """A Python model's size, and its copies in the Python workers of one executor (a big forest is copied into
    every worker)."""
    if size_bytes is None:  # an MLlib model lives in the JVM, once per executor
        return
    if spark is None:  # scored in the driver: one copy, no executors
        mlflow.log_metric("model_size_bytes", size_bytes)
        return
    memory = executor_memory(spark)
    mlflow.log_params({"python_workers_per_executor": memory.python_workers, "executor_memory_source": memory.source})
    mlflow.log_metrics(
        {
            "model_size_bytes": size_bytes,
            "model_memory_per_executor_bytes": size_bytes * memory.python_workers,
            "executor_memory_bytes": memory.memory_bytes,
        }
    )
    warn_if_large(size_bytes, memory, label, warn_fraction)


def _fetch_model(resolved: ResolvedModel, info) -> None:
    """Download and load the model (and the libraries it needs) on the driver: while the JVM starts, if one does."""
    driver_model(str(prefetch_model(resolved)), "sklearn" if "sklearn" in info.flavors else "python_function")


ENTRY_POINT = EntryPoint(ScoreBatchParams, run, spark=LAZY_SPARK)
main = ENTRY_POINT.main

if __name__ == "__main__":
    run_cli(main)
