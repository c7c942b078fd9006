"""Entry point `score_batch`: score a Parquet/CSV table with a model URI and write Parquet.

python -m scoring.score_batch --model-uri models:/cancer/production --input in.parquet --output out.parquet
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import mlflow
from pyspark.sql import SparkSession

from common.cli import run_cli
from common.datasets import SPARK_FORMATS, read_spark_table
from common.errors import UserInputError
from common.model_uri import ResolvedModel, resolve_model_uri
from common.params import logged_params, param, parse_params
from common.settings import Settings
from common.spark import build_spark
from common.tracking import job_settings, log_dataset, log_new_params, tracked_run
from scoring.model_size import DEFAULT_WARN_FRACTION, executor_memory, warn_if_large
from scoring.output import StagedOutput
from scoring.plan import arrow_batch_rows
from scoring.score import ScoredFrame, score_resolved
from scoring.spark_flavor import UNSEEN_ROWS
from scoring.strategies import STRATEGIES, check_strategy

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchResult:
    run_id: str
    model: ResolvedModel
    rows_in: int
    rows_out: int
    output: str
    seconds: float


@dataclass(frozen=True)
class ScoreBatchParams:
    model_uri: str = param(help="models:/<name>/<stage|version>, models:/<name>@<alias>, runs:/...")
    input: str = param(help="Parquet (file or folder), CSV or JSON")
    output: str = param(help="Parquet folder to create")
    input_format: str = param("auto", choices=("auto", *SPARK_FORMATS))
    overwrite: bool = param(False, help="replace an existing output (atomically)")
    strategy: str = param("auto", help=f"scoring path: {', '.join(STRATEGIES)}")
    features_column: str | None = param(
        None, help="one array / MLlib vector column holding the features in the signature's order (wide models)"
    )


def run(
    spark: SparkSession,
    settings: Settings,
    params: ScoreBatchParams,
    memory_warn_fraction: float = DEFAULT_WARN_FRACTION,
) -> BatchResult:
    """Everything that can be checked is checked before the tracking run and before any output is written.

    `features_column`: take the features from one array / MLlib vector column (in the signature's order).
    `memory_warn_fraction`: warn when the Python workers' model copies pass this fraction of executor memory."""
    p = params
    check_strategy(p.strategy)
    resolved = resolve_model_uri(mlflow.MlflowClient(), p.model_uri)
    df = read_spark_table(spark, p.input, p.input_format)
    rows_in = df.count()
    if rows_in == 0:
        raise UserInputError(f"input {p.input!r} has no rows")
    scored = score_resolved(spark, df, resolved, p.strategy, p.features_column)
    staged = StagedOutput(spark, p.output, p.overwrite)

    with tracked_run(settings, run_name="score_batch") as active:
        log_new_params(
            {
                **logged_params(p),
                "resolved_model_uri": resolved.load_uri,
                "model_name": resolved.model_name,
                "model_version": resolved.model_version,
                "scoring_path": scored.strategy,
            }
        )
        _log_model_size(spark, scored, memory_warn_fraction)
        log_dataset(mlflow.data.from_spark(df, path=p.input), context="scoring")
        started = time.perf_counter()
        with arrow_batch_rows(spark, scored.batch_rows):
            staged.write(scored.frame, lambda frame, path: frame.write.parquet(path))
        rows_out = spark.read.parquet(staged.staging.toString()).count()
        seconds = time.perf_counter() - started
        if rows_out != rows_in:
            staged.abort()
            raise RuntimeError(f"scored {rows_out} rows from {rows_in} input rows; nothing was written to {p.output}")
        final = staged.commit()
        mlflow.log_metrics(
            {
                "rows_in": rows_in,
                "rows_out": rows_out,
                "seconds": seconds,
                "rows_per_second": rows_in / seconds,
            }
        )
        if scored.observation is not None:
            observed = {k: int(v or 0) for k, v in scored.observation.get.items()}
            mlflow.log_metrics(observed)
            if observed.get(UNSEEN_ROWS):
                _logger.warning("%d row(s) held categories unseen in training: %s", observed[UNSEEN_ROWS], observed)
        _logger.info("scored %d rows with %s in %.1fs -> %s", rows_in, resolved.label, seconds, final)
        return BatchResult(active.info.run_id, resolved, rows_in, rows_out, final, seconds)


def _log_model_size(spark: SparkSession, scored: ScoredFrame, warn_fraction: float) -> None:
    """A Python model's size, and its copies in the Python workers of one executor (a big forest is copied into
    every worker)."""
    if scored.model_size_bytes is None:  # an MLlib model lives in the JVM, once per executor
        return
    memory = executor_memory(spark)
    mlflow.log_params({"python_workers_per_executor": memory.python_workers, "executor_memory_source": memory.source})
    mlflow.log_metrics(
        {
            "model_size_bytes": scored.model_size_bytes,
            "model_memory_per_executor_bytes": scored.model_size_bytes * memory.python_workers,
            "executor_memory_bytes": memory.memory_bytes,
        }
    )
    warn_if_large(scored.model_size_bytes, memory, scored.model.label, warn_fraction)


def main(argv: Sequence[str] | None = None) -> BatchResult:
    params = parse_params(ScoreBatchParams, argv)
    settings = job_settings()
    result = run(build_spark(settings, app_name="score_batch"), settings, params)
    print(
        f"scored {result.rows_in} rows in, {result.rows_out} rows out with {result.model.label} "
        f"({result.rows_in / result.seconds:,.0f} rows/s) -> {result.output}"
    )
    return result


if __name__ == "__main__":
    run_cli(main)
