"""The function a scoring stream runs for each micro-batch (Spark's foreachBatch): pick the model version, read the
batch's files into the stream's schema, quarantine what does not fit, score the rest and commit it atomically."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

import mlflow
from mlflow.entities import Metric
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from common.columns import col
from common.hadoop_fs import files_for
from common.model_uri import ResolvedModel, resolve_model_uri
from common.parquet_time import microsecond_parquet_output
from scoring.batch.dataframe import score_resolved
from scoring.batch.output import StagedOutput
from scoring.batch.plan import arrow_batch_rows
from scoring.stream.landed_files import (
    REASON,
    SOURCE_FILE,
    TEXT_FORMATS,
    BatchInput,
    StreamSchema,
    raw_columns,
    read_batch,
    without_unreadable,
)
from scoring.stream.state import StreamState

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamTarget:
    """What each micro-batch needs to know of the stream: the model to follow, how to read and score, where to
    write."""

    model_uri: str
    format: str
    strategy: str
    output: str
    quarantine: str
    keep_features: bool = False  # the model's inputs written beside each prediction (score_batch's keep_features)


class BatchScorer:
    """The foreachBatch function. Runs on the driver, in Spark's stream thread: logs through MlflowClient with an
    explicit run id (MLflow's active run is per thread)."""

    def __init__(
        self, spark: SparkSession, target: StreamTarget, schema: StreamSchema, state: StreamState, run_id: str
    ):
        self.spark, self.config, self.schema, self.state, self.run_id = spark, target, schema, state, run_id
        self.scored_batches: list[int] = []  # batch ids this process scored (a replay it skipped is not one)
        self.output = files_for(spark, target.output)
        self.quarantine = files_for(spark, target.quarantine)
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
        batch = read_batch(self.spark, paths, self.config.format, self.schema)
        try:
            counts = self._score_and_commit(batch_id, batch, model, target)
        except Exception:
            # A file whose header or footer read fine may still hold damaged data: find such files by reading
            # each through, set them aside, and try once more. Anything else fails the batch (and is retried).
            checked = without_unreadable(batch, self.config.format)
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
        text = self.config.format in TEXT_FORMATS
        if text:
            rows = rows.persist()  # text is parsed once, for both the quarantined and the scored rows
        try:
            if text:
                bad = rows.filter(F.col(REASON).isNotNull())
                quarantined = bad.count()
                if quarantined:
                    self._quarantine_rows(batch_id, bad)
            good = rows.filter(F.col(REASON).isNull()).select(*[col(f.name) for f in self.schema.fields])
            scored = self._commit_scored(batch_id, good, model, target)
        finally:
            if text:
                rows.unpersist()
        return {"rows_scored": scored, "rows_quarantined": quarantined}

    def _commit_scored(self, batch_id: int, good: DataFrame, model: ResolvedModel, target) -> int:
        """Score, stage, rename into place; rows are counted while they are written (no second pass)."""
        scored = score_resolved(self.spark, good, model, self.config.strategy, keep_features=self.config.keep_features)
        counter = Observation(f"rows_scored_{batch_id}")
        frame = scored.frame.observe(counter, F.count(F.lit(1)).alias("rows"))
        staged = StagedOutput(self.spark, self.output.uri(target), overwrite=False, hidden=True)
        with arrow_batch_rows(self.spark, scored.batch_rows), microsecond_parquet_output(self.spark):
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
        rows = bad.select(*[col(c).alias(c.removeprefix("_raw_")) for c in raw_columns(bad)], REASON, SOURCE_FILE)
        target = self.quarantine.path("rows", f"batch_id={batch_id}")
        staged = StagedOutput(self.spark, self.quarantine.uri(target), overwrite=True, hidden=True)
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
