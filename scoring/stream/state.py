"""What a stream remembers beside Spark's own checkpoint: which model version scored which micro-batch (so a batch
replayed after a crash is scored by the same version), and the MLflow run the stream logs into."""

from __future__ import annotations

import json

from pyspark.sql import SparkSession
from pyspark.sql import types as T

from common.hadoop_fs import files_for
from common.model_uri import ResolvedModel

SPARK_CHECKPOINT = "spark"  # Spark's offsets / commits for the query
_OWN = "lifecycle"


class StreamState:
    def __init__(self, spark: SparkSession, checkpoint: str):
        self._files = files_for(spark, checkpoint)
        self.spark_checkpoint = self._files.uri(self._files.path(SPARK_CHECKPOINT))

    def model_for_batch(self, batch_id: int) -> ResolvedModel | None:
        text = self._files.read_text(self._files.path(_OWN, "batches", f"{batch_id}.json"))
        return ResolvedModel(**json.loads(text)) if text else None

    def record_model_for_batch(self, batch_id: int, model: ResolvedModel) -> None:
        """Written before the batch is scored: a replay of this batch id reuses exactly this version."""
        record = json.dumps(model.__dict__, sort_keys=True)
        self._files.write_text_atomically(self._files.path(_OWN, "batches", f"{batch_id}.json"), record)

    def files_of_batches(self) -> dict[int, list[str]]:
        """The files of each micro-batch a stream driven from this process (under Spark Connect) recorded, by
        batch id; Spark's own source keeps this in its offsets instead."""
        folder = self._files.path(_OWN, "files")
        recorded = {}
        for name, _uri, _modified in self._files.listing(folder):
            if name.endswith(".json") and name.removesuffix(".json").isdigit():
                recorded[int(name.removesuffix(".json"))] = json.loads(
                    self._files.read_text(self._files.path(_OWN, "files", name))
                )
        return recorded

    def record_files_of_batch(self, batch_id: int, paths: list[str]) -> None:
        """Written before the batch is scored, as Spark writes its offsets: a restart replays exactly these files."""
        self._files.write_text_atomically(self._files.path(_OWN, "files", f"{batch_id}.json"), json.dumps(paths))

    def driven_by(self) -> str | None:
        """Which side chose this checkpoint's micro-batches: "spark" (its file source's offsets), "client" (the
        files recorded by a stream through Spark Connect), None for a new checkpoint."""
        if self._files.exists(self._files.path(SPARK_CHECKPOINT, "offsets")):
            return "spark"
        if self._files.exists(self._files.path(_OWN, "files")):
            return "client"
        return None

    def run_id(self) -> str | None:
        return self._files.read_text(self._files.path(_OWN, "mlflow_run_id"))

    def record_run_id(self, run_id: str) -> None:
        self._files.write_text_atomically(self._files.path(_OWN, "mlflow_run_id"), run_id)

    def carried_columns(self) -> tuple[T.StructType, bool] | None:
        """The columns besides the features that this stream carries to its output, as chosen at its first start,
        and whether they were declared (else taken from the files present then)."""
        text = self._files.read_text(self._files.path(_OWN, "carried_columns.json"))
        if not text:
            return None
        record = json.loads(text)
        return T.StructType.fromJson(record["columns"]), record["declared"]

    def record_carried_columns(self, columns: T.StructType, declared: bool) -> None:
        record = json.dumps({"columns": columns.jsonValue(), "declared": declared})
        self._files.write_text_atomically(self._files.path(_OWN, "carried_columns.json"), record)
