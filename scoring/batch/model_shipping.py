"""Get a model to every executor without any driver-local path: download once, ship as an archive (the
SparkContext's on a classic session, a Connect artifact through Spark Connect: common.spark_compat.add_archive).

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

from common import spark_compat
from common.bounded_cache import BoundedCache
from common.model_uri import ResolvedModel


def _forget(_slot, shipped: tuple[str, Path]) -> None:
    """A model version no longer in use: its unpacked download goes. The archive stays: the driver's file server
    keeps serving it to executors that join later (every task lists every archive the context was given)."""
    shutil.rmtree(shipped[1], ignore_errors=True)


# (the SparkContext or Connect session, model key) -> (SparkFiles name, local directory): one download and one
# archive added per model per session while the model is in use.
_SHIPPED: BoundedCache[tuple[str, str], tuple[str, Path]] = BoundedCache(on_evict=_forget)


# model key -> a download made before (or without) a SparkSession: a job fetches its model while the JVM starts,
# and a job scored in the driver alone never ships it.
_PREFETCHED: BoundedCache[str, Path] = BoundedCache(on_evict=lambda _key, local: shutil.rmtree(local.parent, True))


def prefetch_model(resolved: ResolvedModel) -> Path:
    """Download the model now, for ship_model to use when the session is up: no second download."""
    key = model_key(resolved, mlflow.get_tracking_uri())
    return _PREFETCHED.get_or_load(key, lambda: _download(resolved, key))


def _download(resolved: ResolvedModel, key: str) -> Path:
    root = Path(tempfile.mkdtemp(prefix="shipped-model-"))
    local = root / f"{key}-{root.name.rsplit('-', 1)[-1]}"
    mlflow.artifacts.download_artifacts(artifact_uri=resolved.load_uri, dst_path=str(local))
    return local


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

    def download_and_ship() -> tuple[str, Path]:
        # Spark refuses a second archive under a name it was given before: a version shipped again after it was
        # dropped from the cache gets a name of its own (its folder's).
        local = _PREFETCHED.pop(key) or _download(resolved, key)
        root, name = local.parent, local.name
        archive = shutil.make_archive(str(root / name), "zip", root_dir=local)
        spark_compat.add_archive(spark, archive)
        return f"{name}.zip", local

    return _SHIPPED.get_or_load((spark_compat.session_key(spark), key), download_and_ship)
