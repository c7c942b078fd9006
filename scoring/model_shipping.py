"""Get a model to every executor without any driver-local path: download once, ship with SparkContext.addArchive.

An archive rather than `addFile` of the folder: Spark refuses local directories on any non-local master, and an
archive is unpacked once per executor.
"""

from __future__ import annotations

import hashlib
import re
import shutil
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
    """Download the model's artifacts on the driver and add them to the job as an archive.

    Returns (the archive's SparkFiles name, which executors resolve to the unpacked folder; the local folder).
    """
    key = model_key(resolved, mlflow.get_tracking_uri())
    slot = (id(spark.sparkContext), key)
    if slot not in _SHIPPED:
        root = Path(tempfile.mkdtemp(prefix="shipped-model-"))
        local = root / key
        mlflow.artifacts.download_artifacts(artifact_uri=resolved.load_uri, dst_path=str(local))
        archive = shutil.make_archive(str(root / key), "zip", root_dir=local)
        spark.sparkContext.addArchive(archive)
        _SHIPPED[slot] = local
    return f"{key}.zip", _SHIPPED[slot]
