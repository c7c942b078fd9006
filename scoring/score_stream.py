"""Entry point `score_stream`: score files as they land in a folder, exactly once, following the registry.

    python -m scoring.score_stream --model-uri models:/churn/production --input /landing --output /scored \\
        --checkpoint /checkpoints/churn --ids "customer_id BIGINT" --trigger "30 seconds"

Spark's file source (as `binaryFile`, names only: contents are never loaded through it) tracks which files each
micro-batch holds, in the checkpoint. For every micro-batch the handler below:
1. resolves the model URI, or, when the batch is a replay after a crash, reuses the version recorded for it;
2. reads each file into the stream's fixed schema (the model's features plus the columns it carries to the output,
   scoring.stream_columns), quarantining bad files and rows with the reason;
3. scores the good rows and commits them as `<output>/batch_id=<id>/` with one rename. A replayed batch whose
   folder exists was committed before the crash and is skipped, so every input row lands exactly once.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import mlflow
from mlflow.entities import Metric
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from lifecycle.cli import optional_str, run_cli, whole_number
from lifecycle.errors import UserInputError
from lifecycle.hadoop_fs import HadoopFS
from lifecycle.settings import Settings
from lifecycle.spark import build_spark
from lifecycle.tracking import configure_tracking, log_new_params, tracked_run
from registry.resolve import ResolvedModel, resolve_model_uri
from scoring.output import StagedOutput
from scoring.plan import arrow_batch_rows
from scoring.score import score_resolved
from scoring.strategies import STRATEGIES, check_strategy
from scoring.stream_columns import choose_stream_schema
from scoring.stream_files import (
    REASON,
    SOURCE_FILE,
    TEXT_FORMATS,
    BatchInput,
    StreamSchema,
    raw_columns,
    read_batch,
    without_unreadable,
)
from scoring.stream_state import StreamState

_logger = logging.getLogger(__name__)
FORMATS = ("parquet", "csv", "json")
# The binaryFile source's fixed schema; only `path` is selected, so file contents are never read through it.
_BINARY_FILE_SCHEMA = "path STRING, modificationTime TIMESTAMP, length BIGINT, content BINARY"


@dataclass(frozen=True)
class StreamConfig:
    model_uri: str
    input: str
    output: str
    checkpoint: str
    quarantine: str
    fmt: str = "parquet"
    trigger: str = "available_now"
    max_files_per_trigger: int = 100
    strategy: str = "auto"  # scoring path for scikit-learn / pyfunc models (scoring.strategies)


class BatchScorer:
    """The foreachBatch function. Runs on the driver, in Spark's stream thread: logs through MlflowClient with an
    explicit run id (MLflow's active run is per thread)."""

    def __init__(
        self, spark: SparkSession, config: StreamConfig, schema: StreamSchema, state: StreamState, run_id: str
    ):
        self.spark, self.config, self.schema, self.state, self.run_id = spark, config, schema, state, run_id
        self.scored_batches: list[int] = []  # batch ids this process scored (a replay it skipped is not one)
        self.output = HadoopFS(spark, config.output)
        self.quarantine = HadoopFS(spark, config.quarantine)
        self.client = mlflow.MlflowClient()

    def __call__(self, files: DataFrame, batch_id: int) -> None:
        started = time.perf_counter()
        target = self.output.path(f"batch_id={batch_id}")
        if self.output.exists(target):
            _logger.info("batch %d was committed before a restart; skipping its replay", batch_id)
            return
        paths = sorted(r.path for r in files.select("path").collect())
        model = self.state.model_for_batch(batch_id)
        if model is None:
            model = resolve_model_uri(self.client, self.config.model_uri)
            self.state.record_model_for_batch(batch_id, model)
        batch = read_batch(self.spark, paths, self.config.fmt, self.schema)
        try:
            counts = self._score_and_commit(batch_id, batch, model, target)
        except Exception:
            # A file whose header or footer read fine may still hold damaged data: find such files by reading
            # each through, set them aside, and try once more. Anything else fails the batch (and is retried).
            checked = without_unreadable(batch, self.config.fmt)
            if len(checked.bad_files) == len(batch.bad_files):
                raise
            batch = checked
            counts = self._score_and_commit(batch_id, batch, model, target)
        for path, reason in batch.bad_files:
            _logger.warning("batch %d: quarantined file %s: %s", batch_id, path, reason)
        undeclared = sorted({column for columns in batch.undeclared.values() for column in columns})
        if undeclared:
            _logger.warning(
                "batch %d: scored, but column(s) %s in %d file(s) are not carried to the output: they are neither "
                "features nor among the stream's columns (%s); to carry them, declare ids=... on a new checkpoint",
                batch_id,
                ", ".join(undeclared),
                len(batch.undeclared),
                ", ".join(self.schema.ids.fieldNames()) or "none",
            )
        metrics = {
            "files": len(paths),
            "files_quarantined": len(batch.bad_files),
            "undeclared_columns": len(undeclared),
            "files_with_undeclared_columns": len(batch.undeclared),
            "rows_in": counts["rows_scored"] + counts["rows_quarantined"],
            **counts,
            "model_version": float(model.model_version or 0),
            "latency_seconds": time.perf_counter() - started,
        }
        self._log(batch_id, metrics)
        _logger.info("batch %d scored by %s: %s", batch_id, model.label, metrics)
        self.scored_batches.append(batch_id)

    def _score_and_commit(self, batch_id: int, batch: BatchInput, model: ResolvedModel, target) -> dict[str, int]:
        """Quarantine first, output last: the output folder's rename is what marks the batch done."""
        self._quarantine_files(batch_id, batch.bad_files)
        rows = batch.rows
        if rows is None:  # every file was set aside: commit an empty batch folder all the same
            self.output.mkdirs(target)
            return {"rows_scored": 0, "rows_quarantined": 0}
        quarantined = 0
        text = self.config.fmt in TEXT_FORMATS
        if text:
            rows = rows.persist()  # text is parsed once, for both the quarantined and the scored rows
        try:
            if text:
                bad = rows.filter(F.col(REASON).isNotNull())
                quarantined = bad.count()
                if quarantined:
                    self._quarantine_rows(batch_id, bad)
            good = rows.filter(F.col(REASON).isNull()).select(*[f.name for f in self.schema.fields])
            scored = self._commit_scored(batch_id, good, model, target)
        finally:
            if text:
                rows.unpersist()
        return {"rows_scored": scored, "rows_quarantined": quarantined}

    def _commit_scored(self, batch_id: int, good: DataFrame, model: ResolvedModel, target) -> int:
        """Score, stage, rename into place; rows are counted while they are written (no second pass)."""
        scored = score_resolved(self.spark, good, model, self.config.strategy)
        counter = Observation(f"rows_scored_{batch_id}")
        frame = scored.frame.observe(counter, F.count(F.lit(1)).alias("rows"))
        staged = StagedOutput(self.spark, target.toString(), overwrite=False, hidden=True)
        with arrow_batch_rows(self.spark, scored.batch_rows):
            staged.write(frame, lambda out, path: out.write.parquet(path))
        staged.commit()
        if scored.observation is not None:
            self._log(batch_id, {k: float(v or 0) for k, v in scored.observation.get.items()})
        return int(counter.get["rows"])

    def _log(self, batch_id: int, metrics: dict[str, float]) -> None:
        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, batch_id) for k, v in metrics.items()])

    def _quarantine_rows(self, batch_id: int, bad: DataFrame) -> None:
        """Rows that do not fit the schema, as they were read (text), with the reason and their file."""
        rows = bad.select(*[F.col(c).alias(c.removeprefix("_raw_")) for c in raw_columns(bad)], REASON, SOURCE_FILE)
        target = self.quarantine.path("rows", f"batch_id={batch_id}")
        staged = StagedOutput(self.spark, target.toString(), overwrite=True, hidden=True)
        staged.write(rows, lambda frame, path: frame.write.parquet(path))
        staged.commit()

    def _quarantine_files(self, batch_id: int, bad_files: list[tuple[str, str]]) -> None:
        """A copy of each unreadable file beside `_reasons.json` saying why; the input folder is left as it is."""
        if not bad_files:
            return
        folder = self.quarantine.path("files", f"batch_id={batch_id}")
        for path, _ in bad_files:
            self.quarantine.copy_into(path, folder)
        reasons = "\n".join(json.dumps({"file": p, "reason": r, "batch_id": batch_id}) for p, r in bad_files)
        self.quarantine.write_text_atomically(
            self.quarantine.path("files", f"batch_id={batch_id}", "_reasons.json"), reasons
        )


def parse_trigger(trigger: str) -> dict:
    """`available_now`: process what is there, then stop. Otherwise an interval such as '30 seconds'."""
    text = trigger.strip().lower()
    if text in ("available_now", "availablenow"):
        return {"availableNow": True}
    number, _, unit = text.partition(" ")
    if not number.replace(".", "", 1).isdigit() or unit.rstrip("s") not in ("second", "minute", "hour", "millisecond"):
        raise UserInputError(f"trigger must be available_now or an interval such as '30 seconds', got {trigger!r}")
    return {"processingTime": text}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="score_stream", description=__doc__.splitlines()[0])
    parser.add_argument("--model-uri", required=True)
    parser.add_argument(
        "--input", required=True, help="folder that files land in (moved in whole, not written in place)"
    )
    parser.add_argument("--output", required=True, help="Parquet folder, one batch_id=<n> folder per micro-batch")
    parser.add_argument("--checkpoint", required=True, help="folder for the stream's progress; reuse it to resume")
    parser.add_argument("--quarantine", type=optional_str, default=None, help="default: <output>_quarantine")
    parser.add_argument("--format", default="parquet", choices=FORMATS)
    parser.add_argument("--trigger", default="available_now", help="available_now, or an interval: '30 seconds'")
    parser.add_argument("--max-files-per-trigger", type=whole_number, default=100)
    parser.add_argument(
        "--ids",
        type=optional_str,
        default=None,
        help="columns to carry to the output, as DDL: 'customer_id BIGINT'; default: every non-feature column "
        "of the files present at the stream's first start (kept in the checkpoint)",
    )
    parser.add_argument("--schema", type=optional_str, default=None, help="the full input schema as DDL")
    parser.add_argument("--strategy", default="auto", help=f"scoring path: {', '.join(STRATEGIES)}")
    return parser.parse_args(argv)


def run(
    spark: SparkSession, settings: Settings, config: StreamConfig, ids: str | None = None, schema: str | None = None
) -> list[int]:
    """Start the query and block until it ends: at once for available_now, else on SIGTERM/SIGINT or an error.
    Returns the micro-batches this run scored."""
    check_strategy(config.strategy)
    configure_tracking(settings)
    trigger = parse_trigger(config.trigger)
    if config.max_files_per_trigger < 1:
        raise UserInputError(f"max_files_per_trigger must be at least 1, got {config.max_files_per_trigger}")
    input_files = HadoopFS(spark, config.input)
    if not input_files.exists(input_files.root):
        raise UserInputError(f"input folder {config.input} does not exist")
    current = resolve_model_uri(mlflow.MlflowClient(), config.model_uri)  # fail now on a wrong URI, not per batch
    state = StreamState(spark, config.checkpoint)
    signature = mlflow.models.get_model_info(current.load_uri).signature
    stream, carried_from = choose_stream_schema(
        spark, state, config.input, config.fmt, signature, current.label, ids, schema
    )
    _remove_incomplete(spark, config)

    with tracked_run(settings, run_name="score_stream", resume_run_id=state.run_id()) as active:
        state.record_run_id(active.info.run_id)
        log_new_params(
            {
                "model_uri": config.model_uri,
                "input": config.input,
                "output": config.output,
                "checkpoint": config.checkpoint,
                "quarantine": config.quarantine,
                "format": config.fmt,
                "trigger": config.trigger,
                "max_files_per_trigger": config.max_files_per_trigger,
                "strategy": config.strategy,
                "schema": ", ".join(f"{f.name} {f.dataType.simpleString()}" for f in stream.fields),
                "carried_columns_from": carried_from,
            }
        )
        scorer = BatchScorer(spark, config, stream, state, active.info.run_id)
        query = (
            spark.readStream.format("binaryFile")
            .schema(_BINARY_FILE_SCHEMA)
            .option("pathGlobFilter", f"*.{config.fmt}")
            .option("maxFilesPerTrigger", config.max_files_per_trigger)
            .load(config.input)
            .select("path")
            .writeStream.foreachBatch(scorer)
            .option("checkpointLocation", state.spark_checkpoint)
            .trigger(**trigger)
            .queryName("score_stream")
            .start()
        )
        _stop_on_signals(query)
        query.awaitTermination()
        return scorer.scored_batches


def _remove_incomplete(spark: SparkSession, config: StreamConfig) -> None:
    """Staging folders a killed run left behind; their batches are replayed from the checkpoint."""
    for root in (config.output, f"{config.quarantine}/rows"):
        files = HadoopFS(spark, root)
        for child in files.children(files.root):
            if child.getName().startswith("_") and ".incomplete-" in child.getName():
                files.delete(child)


def _stop_on_signals(query) -> None:
    """SIGTERM / SIGINT stop the query between micro-batches' commits; a resumed run picks up where it stopped."""
    if threading.current_thread() is not threading.main_thread():
        return

    def stop(signum, _frame):
        _logger.info("signal %d: stopping the stream", signum)
        threading.Thread(target=query.stop, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    settings = Settings.from_env()
    config = StreamConfig(
        model_uri=args.model_uri,
        input=args.input,
        output=args.output,
        checkpoint=args.checkpoint,
        quarantine=args.quarantine or f"{args.output.rstrip('/')}_quarantine",
        fmt=args.format,
        trigger=args.trigger,
        max_files_per_trigger=args.max_files_per_trigger,
        strategy=args.strategy,
    )
    spark = build_spark(settings, app_name="score_stream")
    scored = run(spark, settings, config, args.ids, args.schema)
    last = f"scored micro-batch(es) {', '.join(map(str, scored))}" if scored else "no new files: nothing scored"
    print(f"stream stopped ({last}); output {config.output}, quarantine {config.quarantine}")


if __name__ == "__main__":
    run_cli(main)
