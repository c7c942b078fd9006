"""Get a model to every executor without any driver-local path: download once, ship with SparkContext.addFile."""

from __future__ import annotations

import hashlib
import re
import tempfile
from pathlib import Path

import mlflow
from pyspark.sql import SparkSession

from registry.resolve import ResolvedModel

# (id of the SparkContext, model key) -> local directory; one download and one addFile per model per context.
_SHIPPED: dict[tuple[int, str], Path] = {}


def model_key(resolved: ResolvedModel, tracking_uri: str) -> str:
    """A SparkFiles name unique to this model's content: the same name+version in another store differs."""
    digest = hashlib.sha1(f"{tracking_uri}|{resolved.load_uri}|{resolved.run_id}".encode()).hexdigest()[:12]
    readable = re.sub(r"[^0-9A-Za-z_.-]+", "_", resolved.label)
    return f"model-{readable}-{digest}"


def ship_model(spark: SparkSession, resolved: ResolvedModel) -> tuple[str, Path]:
    """Download the model's artifacts on the driver and add the directory to the job; returns (key, local dir)."""
    key = model_key(resolved, mlflow.get_tracking_uri())
    slot = (id(spark.sparkContext), key)
    if slot not in _SHIPPED:
        local = Path(tempfile.mkdtemp(prefix="shipped-model-")) / key
        mlflow.artifacts.download_artifacts(artifact_uri=resolved.load_uri, dst_path=str(local))
        spark.sparkContext.addFile(str(local), recursive=True)
        _SHIPPED[slot] = local
    return key, _SHIPPED[slot]
