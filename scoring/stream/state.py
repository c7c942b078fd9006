"""What a stream remembers beside Spark's own checkpoint: which model version scored which micro-batch (so a batch
replayed after a crash is scored by the same version), and the MLflow run the stream logs into."""

from __future__ import annotations

import json

from pyspark.sql import SparkSession
from pyspark.sql import types as T

from common.hadoop_fs import HadoopFS
from common.model_uri import ResolvedModel

SPARK_CHECKPOINT = "spark"  # Spark's offsets / commits for the query
_OWN = "lifecycle"


class StreamState:
    def __init__(self, spark: SparkSession, checkpoint: str):
        self._files = HadoopFS(spark, checkpoint)
        self.spark_checkpoint = self._files.path(SPARK_CHECKPOINT).toString()

    def model_for_batch(self, batch_id: int) -> ResolvedModel | None:
        text = self._files.read_text(self._files.path(_OWN, "batches", f"{batch_id}.json"))
        return ResolvedModel(**json.loads(text)) if text else None

    def record_model_for_batch(self, batch_id: int, model: ResolvedModel) -> None:
        """Written before the batch is scored: a replay of this batch id reuses exactly this version."""
        record = json.dumps(model.__dict__, sort_keys=True)
        self._files.write_text_atomically(self._files.path(_OWN, "batches", f"{batch_id}.json"), record)

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
