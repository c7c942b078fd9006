"""Entry point `score_batch`: score a Parquet/CSV table with a model URI and write Parquet.

python -m scoring.score_batch --model-uri models:/cancer/production --input in.parquet --output out.parquet
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import mlflow
from pyspark.sql import SparkSession

from lifecycle.cli import boolean, optional_str, run_cli
from lifecycle.datasets import read_spark_table
from lifecycle.errors import UserInputError
from lifecycle.settings import Settings
from lifecycle.spark import build_spark
from lifecycle.tracking import configure_tracking, log_dataset, log_new_params, tracked_run
from registry.resolve import ResolvedModel, resolve_model_uri
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


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="score_batch", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model-uri", required=True, help="models:/<name>/<stage|version>, models:/<name>@<alias>, runs:/..."
    )
    parser.add_argument("--input", required=True, help="Parquet (file or folder), CSV or JSON")
    parser.add_argument("--output", required=True, help="Parquet folder to create")
    parser.add_argument("--input-format", default="auto", choices=["auto", "parquet", "csv", "json"])
    parser.add_argument("--overwrite", type=boolean, default=False, help="replace an existing output (atomically)")
    parser.add_argument("--strategy", default="auto", help=f"scoring path: {', '.join(STRATEGIES)}")
    parser.add_argument(
        "--features-column",
        type=optional_str,
        default=None,
        help="one array / MLlib vector column holding the features in the signature's order (wide models)",
    )
    return parser.parse_args(argv)


def run(
    spark: SparkSession,
    settings: Settings,
    model_uri: str,
    input: str,
    output: str,
    overwrite: bool = False,
    input_format: str = "auto",
    strategy: str = "auto",
    features_column: str | None = None,
    memory_warn_fraction: float = DEFAULT_WARN_FRACTION,
) -> BatchResult:
    """Everything that can be checked is checked before the tracking run and before any output is written.

    `features_column`: take the features from one array / MLlib vector column (in the signature's order).
    `memory_warn_fraction`: warn when the Python workers' model copies pass this fraction of executor memory."""
    check_strategy(strategy)
    configure_tracking(settings)
    resolved = resolve_model_uri(mlflow.MlflowClient(), model_uri)
    df = read_spark_table(spark, input, input_format)
    rows_in = df.count()
    if rows_in == 0:
        raise UserInputError(f"input {input!r} has no rows")
    scored = score_resolved(spark, df, resolved, strategy, features_column)
    staged = StagedOutput(spark, output, overwrite)

    with tracked_run(settings, run_name="score_batch") as active:
        log_new_params(
            {
                "model_uri": model_uri,
                "resolved_model_uri": resolved.load_uri,
                "model_name": resolved.model_name,
                "model_version": resolved.model_version,
                "input": input,
                "output": output,
                "strategy": strategy,
                "scoring_path": scored.strategy,
            }
        )
        _log_model_size(spark, scored, memory_warn_fraction)
        log_dataset(mlflow.data.from_spark(df, path=input), context="scoring")
        started = time.perf_counter()
        with arrow_batch_rows(spark, scored.batch_rows):
            staged.write(scored.frame, lambda frame, path: frame.write.parquet(path))
        rows_out = spark.read.parquet(staged.staging.toString()).count()
        seconds = time.perf_counter() - started
        if rows_out != rows_in:
            staged.abort()
            raise RuntimeError(f"scored {rows_out} rows from {rows_in} input rows; nothing was written to {output}")
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
    """A Python model's size, and its copies in the Python workers of one executor (seed 000: big forests)."""
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
    args = parse_args(argv)
    settings = Settings.from_env()
    spark = build_spark(settings, app_name="score_batch")
    result = run(
        spark,
        settings,
        args.model_uri,
        args.input,
        args.output,
        args.overwrite,
        args.input_format,
        strategy=args.strategy,
        features_column=args.features_column,
    )
    print(
        f"scored {result.rows_in} rows in, {result.rows_out} rows out with {result.model.label} "
        f"({result.rows_in / result.seconds:,.0f} rows/s) -> {result.output}"
    )
    return result


if __name__ == "__main__":
    run_cli(main)
