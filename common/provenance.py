"""What a training run records so that `reproduce` can rebuild its model: the code (commit, and whether the tree
was clean), the entry point (its parameters are the run's params), the data (where it was and a hash of its
content), the environment (Python, Java, Spark and every installed package), the Spark settings that change
results (master, default parallelism, shuffle partitions), and whether a rerun can give the same model at all.

Tags are what the MLflow UI shows and `reproduce` checks; the full package list is the artifact ENVIRONMENT_FILE.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import tempfile
from pathlib import Path

import mlflow

from common import spark_compat
from common.datasets import BUNDLED
from common.java import java_executable, java_version
from common.params import entry_point_name
from common.tracking import CONNECTION_TAG, git_tree_dirty

ENTRY_POINT_TAG = "lifecycle.entry_point"
GIT_COMMIT_TAG = "mlflow.source.git.commit"  # MLflow's own; set for direct `python -m` runs by common.tracking
GIT_DIRTY_TAG = "lifecycle.git.dirty"
DATA_SOURCE_TAG = "lifecycle.data.source"  # the bundled set's name, or the data's absolute path
DATA_SHA256_TAG = "lifecycle.data.sha256"
EXACT_TAG = "lifecycle.reproducible"  # "exact", or "not exact: <why>"
SPARK_TAGS = {
    "master": "lifecycle.spark.master",
    "default_parallelism": "lifecycle.spark.default_parallelism",
    "shuffle_partitions": "lifecycle.spark.shuffle_partitions",
}
# How the job reached Spark: "classic" (a SparkContext in this process) or "connect" (a Spark Connect server), and
# the Spark version of the side that ran it (the server's under Connect).
CONNECTION_TAGS = {"mode": CONNECTION_TAG, "spark_version": "lifecycle.spark.server_version"}
VERSION_TAGS = {"python": "lifecycle.env.python", "java": "lifecycle.env.java", "spark": "lifecycle.env.spark"}
ENVIRONMENT_FILE = "reproducibility/environment.json"
EXACT = "exact"
# The training entry points: their runs make a model from data and parameters alone and record so here, so
# `reproduce` can replay them. A new training job adds its name; the tests hold MLproject to this list.
TRAINING_ENTRY_POINTS = ("train_sklearn", "train_mllib", "train_per_group", "tune_hyperopt", "tune_joblib")


def record_training(params, spark=None, not_exact: str | None = None) -> None:
    """Tag the active run with everything above and log the environment file. `params`: the training entry point's
    parameters (their class names the entry point, their `data` the data). `spark`: the job's session, when it used
    one (its settings decide how rows are split and folded). `not_exact`: why a rerun cannot match, if so."""
    entry_point = entry_point_name(type(params))
    if entry_point not in TRAINING_ENTRY_POINTS:
        raise ValueError(f"{entry_point} is not one of TRAINING_ENTRY_POINTS ({', '.join(TRAINING_ENTRY_POINTS)})")
    environment = current_environment(spark)
    source, digest = data_fingerprint(params.data)
    dirty = git_tree_dirty()
    tags = {
        ENTRY_POINT_TAG: entry_point,
        GIT_DIRTY_TAG: None if dirty is None else str(dirty).lower(),  # None: not a git checkout, not recorded
        DATA_SOURCE_TAG: source,
        EXACT_TAG: EXACT if not_exact is None else f"not exact: {not_exact}",
        **{VERSION_TAGS[k]: environment[k] for k in VERSION_TAGS if environment.get(k)},
        **{SPARK_TAGS[k]: str(v) for k, v in environment.get("spark_settings", {}).items()},
        **connection_tags(spark),
    }
    if digest:
        tags[DATA_SHA256_TAG] = digest
    mlflow.set_tags({k: v for k, v in tags.items() if v is not None})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(ENVIRONMENT_FILE).name
        path.write_text(json.dumps(environment, indent=1, sort_keys=True))
        mlflow.log_artifact(str(path), artifact_path=str(Path(ENVIRONMENT_FILE).parent))


def current_environment(spark=None) -> dict:
    """Versions of Python, Java, Spark and every installed distribution; with a session, the settings that change
    results (and Java as the session's JVM reports it, with no second JVM started to ask)."""
    java = java_executable()
    environment = {
        "python": platform.python_version(),
        "java": java_version(java) if spark is None and java else None,
        "spark": importlib.metadata.version("pyspark"),
        "packages": installed_packages(),
    }
    if spark is not None:
        environment["java"] = spark_compat.java_version(spark)
        environment["spark_settings"] = {
            "master": spark_compat.master(spark),
            "default_parallelism": spark_compat.default_parallelism(spark),
            "shuffle_partitions": int(spark.conf.get("spark.sql.shuffle.partitions")),
        }
    return environment


def connection_tags(spark=None) -> dict[str, str]:
    """The CONNECTION_TAGS of a session; none without one (the job ran without Spark)."""
    if spark is None:
        return {}
    mode, version = CONNECTION_TAGS["mode"], CONNECTION_TAGS["spark_version"]
    return {mode: spark_compat.connection_mode(spark), version: spark.version}


def record_connection(spark=None) -> None:
    """Tag the active run with how it reached Spark (scoring and other jobs that record no training provenance)."""
    tags = connection_tags(spark)
    if tags:
        mlflow.set_tags(tags)


def installed_packages() -> dict[str, str]:
    """{normalised distribution name: version} of everything importable in this interpreter."""
    packages = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            packages[name.lower().replace("_", "-")] = dist.version
    return dict(sorted(packages.items()))


def data_fingerprint(data: str) -> tuple[str, str | None]:
    """(source, sha256 of the content). A bundled set is hashed as loaded (its loader's package version is in
    the environment); a local file or folder by its bytes (a folder: every data file, by relative name, skipping
    the `_`/`.` files Spark skips). A remote URI is not read twice: (uri, None); MLflow's dataset digest remains."""
    if data in BUNDLED:
        return data, frame_sha256(BUNDLED[data]())
    if "://" in data and not data.startswith("file://"):
        return data, None
    path = Path(data.removeprefix("file://")).resolve()
    return str(path), files_sha256(path) if path.exists() else None


def frame_sha256(frame) -> str:
    import pandas as pd

    digest = hashlib.sha256()
    digest.update(json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def files_sha256(path: Path) -> str:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file() and _is_data_file(p, path))
    digest = hashlib.sha256()
    for file in files:
        digest.update(str(file.relative_to(path) if file != path else file.name).encode() + b"\0")
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _is_data_file(file: Path, root: Path) -> bool:
    return not any(part.startswith(("_", ".")) for part in file.relative_to(root).parts)


# Set on a model version by `reproduce` (shown in the UI's version page and by `history`).
REPRODUCTION_VERDICT_TAG = "lifecycle.reproduction.verdict"
REPRODUCTION_RUN_TAG = "lifecycle.reproduction.run_id"
