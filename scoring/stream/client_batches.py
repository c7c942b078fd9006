"""A scoring stream's micro-batches chosen in this process, for Spark Connect: there, `foreachBatch` runs its
function in a Python process of the Connect server, which has neither the project's code on its path (artifacts
reach the executors' tasks, not that process) nor the tracking server's credentials (the team stack gives the
cluster none). So under Connect this process lists the landed files itself and calls the same BatchScorer with
each micro-batch's files; the scoring inside runs on the cluster as before.

Exactly once, as Spark's file source does it: a batch's files are written to the checkpoint before the batch is
scored (scoring.stream.state), and a restart first replays the last recorded batch (the scorer skips it when its
output folder was committed, and reuses the model version recorded for it); a new batch takes the files no recorded
batch holds, oldest first, at most `max_files` of them. Which side chose a checkpoint's batches is fixed at its
first start: a checkpoint of the other mode is refused (their records cannot be read across)."""

from __future__ import annotations

import logging
import threading

from common.errors import UserInputError
from common.hadoop_fs import files_for
from scoring.stream.columns import is_data_file
from scoring.stream.micro_batch import BatchScorer
from scoring.stream.state import StreamState

_logger = logging.getLogger(__name__)
_SECONDS = {"millisecond": 0.001, "second": 1.0, "minute": 60.0, "hour": 3600.0}


def check_checkpoint_mode(state: StreamState, connect: bool) -> None:
    driven_by = state.driven_by()
    if driven_by == "spark" and connect:
        raise UserInputError(
            "this checkpoint's stream ran in classic mode (Spark's file source chose its batches): resume it without "
            "SPARK_REMOTE, or start a new checkpoint and output for a stream through Spark Connect"
        )
    if driven_by == "client" and not connect:
        raise UserInputError(
            "this checkpoint's stream ran through Spark Connect: resume it with SPARK_REMOTE set, or start a new "
            "checkpoint and output for a stream in classic mode"
        )


def interval_seconds(trigger: dict) -> float | None:
    """None for available_now; else the processing-time interval in seconds ('30 seconds')."""
    if trigger.get("availableNow"):
        return None
    number, _, unit = trigger["processingTime"].partition(" ")
    return float(number) * _SECONDS[unit.rstrip("s")]


def run_client_batches(
    spark, scorer: BatchScorer, state: StreamState, input_folder: str, fmt: str, max_files: int, trigger: dict,
    stop: threading.Event,
) -> None:  # fmt: skip
    """Score what lands in `input_folder` until `stop` is set (interval trigger) or nothing is left (available_now)."""
    recorded = state.files_of_batches()
    seen = {path for paths in recorded.values() for path in paths}
    next_id = 0
    if recorded:
        last = max(recorded)
        _logger.info("resuming: batch %d replayed (skipped if it was committed)", last)
        scorer(_paths_frame(spark, recorded[last]), last)
        next_id = last + 1
    interval = interval_seconds(trigger)
    landed = files_for(spark, input_folder)
    while not stop.is_set():
        new = sorted(
            (entry for entry in landed.listing(landed.root) if is_data_file(entry[0], fmt) and entry[1] not in seen),
            key=lambda entry: (entry[2], entry[0]),  # oldest first, as Spark's file source takes them
        )
        batches = [new[i : i + max_files] for i in range(0, len(new), max_files)]
        for batch in batches if interval is None else batches[:1]:
            paths = [uri for _name, uri, _modified in batch]
            state.record_files_of_batch(next_id, paths)
            scorer(_paths_frame(spark, paths), next_id)
            seen.update(paths)
            next_id += 1
            if stop.is_set():
                return
        if interval is None:
            return
        stop.wait(interval)


def _paths_frame(spark, paths: list[str]):
    """The batch as the scorer takes it from Spark's binaryFile source: one `path` per file."""
    return spark.createDataFrame([(path,) for path in paths], "path STRING")
