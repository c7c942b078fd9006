"""Entry point `score_stream`: score files as they land in a folder, exactly once, following the registry.

    python -m scoring.stream.score_stream --model-uri models:/churn/production --input /landing --output /scored \\
        --checkpoint /checkpoints/churn --ids "customer_id BIGINT" --trigger "30 seconds"

Spark's file source (as `binaryFile`, names only: contents are never loaded through it) tracks which files each
micro-batch holds, in the checkpoint. For every micro-batch the handler below:
1. resolves the model URI, or, when the batch is a replay after a crash, reuses the version recorded for it;
2. reads each file into the stream's fixed schema (the model's features plus the columns it carries to the output,
   scoring.stream.columns), quarantining bad files and rows with the reason;
3. scores the good rows and commits them as `<output>/batch_id=<id>/` with one rename. A replayed batch whose
   folder exists was committed before the crash and is skipped, so every input row lands exactly once.

Through Spark Connect (SPARK_REMOTE) this process chooses the micro-batches itself and records each one's files in
the checkpoint before scoring it (scoring.stream.client_batches says why); the handler and the guarantee are the
same. A checkpoint keeps the mode it started in.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import mlflow
from pyspark.sql import SparkSession

from common import spark_compat
from common.cli import run_cli
from common.errors import UserInputError
from common.hadoop_fs import files_for
from common.job import EAGER_SPARK, EntryPoint
from common.model_uri import resolve_model_uri
from common.params import logged_params, param
from common.settings import Settings
from common.tracking import log_new_params, tracked_run
from scoring.batch.strategies import STRATEGIES, check_strategy
from scoring.stream.client_batches import check_checkpoint_mode, run_client_batches
from scoring.stream.columns import choose_stream_schema
from scoring.stream.micro_batch import BatchScorer, StreamTarget
from scoring.stream.state import StreamState

_logger = logging.getLogger(__name__)
FORMATS = ("parquet", "csv", "json")
# The binaryFile source's fixed schema; only `path` is selected, so file contents are never read through it.
_BINARY_FILE_SCHEMA = "path STRING, modificationTime TIMESTAMP, length BIGINT, content BINARY"


@dataclass(frozen=True)
class ScoreStreamParams:
    model_uri: str = param(help="models:/<name>/<stage|version>, models:/<name>@<alias>, runs:/...")
    input: str = param(help="folder that files land in (moved in whole, not written in place)")
    output: str = param(help="Parquet folder, one batch_id=<n> folder per micro-batch")
    checkpoint: str = param(help="folder for the stream's progress; reuse it to resume")
    quarantine: str | None = param(None, help="default: <output>_quarantine")
    format: str = param("parquet", choices=FORMATS)
    trigger: str = param("available_now", help="available_now, or an interval: '30 seconds'")
    max_files_per_trigger: int = param(100)
    ids: str | None = param(
        None,
        help="columns to carry to the output, as DDL: 'customer_id BIGINT'; default: every non-feature column "
        "of the files present at the stream's first start (kept in the checkpoint)",
    )
    schema: str | None = param(None, help="the full input schema as DDL")
    strategy: str = param("auto", help=f"scoring path: {', '.join(STRATEGIES)}")
    keep_features: bool = param(
        False, help="also write the model's input columns beside each prediction: an inference table monitor profiles"
    )

    @property
    def quarantine_folder(self) -> str:
        return self.quarantine or f"{self.output.rstrip('/')}_quarantine"


@dataclass(frozen=True)
class StreamResult:
    scored_batches: list[int]  # the micro-batches this run scored
    output: str
    quarantine: str

    def summary(self) -> str:
        batches = ", ".join(map(str, self.scored_batches))
        last = f"scored micro-batch(es) {batches}" if self.scored_batches else "no new files: nothing scored"
        return f"stream stopped ({last}); output {self.output}, quarantine {self.quarantine}"


def parse_trigger(trigger: str) -> dict:
    """`available_now`: process what is there, then stop. Otherwise an interval such as '30 seconds'."""
    text = trigger.strip().lower()
    if text in ("available_now", "availablenow"):
        return {"availableNow": True}
    number, _, unit = text.partition(" ")
    if not number.replace(".", "", 1).isdigit() or unit.rstrip("s") not in ("second", "minute", "hour", "millisecond"):
        raise UserInputError(f"trigger must be available_now or an interval such as '30 seconds', got {trigger!r}")
    return {"processingTime": text}


def run(spark: SparkSession, settings: Settings, params: ScoreStreamParams) -> StreamResult:
    """Start the query and block until it ends: at once for available_now, else on SIGTERM/SIGINT or an error."""
    p = params
    check_strategy(p.strategy)
    trigger = parse_trigger(p.trigger)
    if p.max_files_per_trigger < 1:
        raise UserInputError(f"max_files_per_trigger must be at least 1, got {p.max_files_per_trigger}")
    input_files = files_for(spark, p.input)
    if not input_files.exists(input_files.root):
        raise UserInputError(f"input folder {p.input} does not exist")
    current = resolve_model_uri(mlflow.MlflowClient(), p.model_uri)  # fail now on a wrong URI, not per batch
    state = StreamState(spark, p.checkpoint)
    connect = spark_compat.is_connect(spark)
    check_checkpoint_mode(state, connect)
    signature = mlflow.models.get_model_info(current.load_uri).signature
    stream, carried_from = choose_stream_schema(
        spark, state, p.input, p.format, signature, current.label, p.ids, p.schema
    )
    _remove_incomplete(spark, p)

    with tracked_run(settings, run_name="score_stream", resume_run_id=state.run_id()) as active:
        state.record_run_id(active.info.run_id)
        log_new_params(
            {
                **logged_params(p),
                "quarantine": p.quarantine_folder,
                "schema": ", ".join(f"{f.name} {f.dataType.simpleString()}" for f in stream.fields),
                "carried_columns_from": carried_from,
            }
        )
        target = StreamTarget(p.model_uri, p.format, p.strategy, p.output, p.quarantine_folder, p.keep_features)
        scorer = BatchScorer(spark, target, stream, state, active.info.run_id)
        if connect:  # this process chooses the micro-batches (scoring.stream.client_batches says why)
            stop = threading.Event()
            with _stop_on_signals_event(stop):
                run_client_batches(spark, scorer, state, p.input, p.format, p.max_files_per_trigger, trigger, stop)
            return StreamResult(scorer.scored_batches, p.output, p.quarantine_folder)
        query = (
            spark.readStream.format("binaryFile")
            .schema(_BINARY_FILE_SCHEMA)
            .option("pathGlobFilter", f"*.{p.format}")
            .option("maxFilesPerTrigger", p.max_files_per_trigger)
            .load(p.input)
            .select("path")
            .writeStream.foreachBatch(scorer)
            .option("checkpointLocation", state.spark_checkpoint)
            .trigger(**trigger)
            .queryName("score_stream")
            .start()
        )
        _stop_on_signals(query)
        query.awaitTermination()
        return StreamResult(scorer.scored_batches, p.output, p.quarantine_folder)


def _remove_incomplete(spark: SparkSession, params: ScoreStreamParams) -> None:
    """Staging folders a killed run left behind; their batches are replayed from the checkpoint."""
    for root in (params.output, f"{params.quarantine_folder}/rows"):
        files = files_for(spark, root)
        for child in files.children(files.root):
            if files.name(child).startswith("_") and ".incomplete-" in files.name(child):
                files.delete(child)


@contextmanager
def _stop_on_signals_event(stop: threading.Event) -> Iterator[None]:
    """SIGTERM / SIGINT set `stop`: the stream ends after the micro-batch it is scoring. The handlers before are
    put back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum, _frame):
        _logger.info("signal %d: stopping the stream after this micro-batch", signum)
        stop.set()

    saved = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, previous in saved.items():
            signal.signal(sig, previous)


def _stop_on_signals(query) -> None:
    """SIGTERM / SIGINT stop the query between micro-batches' commits; a resumed run picks up where it stopped."""
    if threading.current_thread() is not threading.main_thread():
        return

    def stop(signum, _frame):
        _logger.info("signal %d: stopping the stream", signum)
        threading.Thread(target=query.stop, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


ENTRY_POINT = EntryPoint(ScoreStreamParams, run, spark=EAGER_SPARK)
main = ENTRY_POINT.main

if __name__ == "__main__":
    run_cli(main)
