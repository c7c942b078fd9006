"""The one module that reaches past the DataFrame API (the SparkContext, py4j's `_jvm`, RDDs, broadcasts,
`addArchive`), so every job runs both on a classic session and through Spark Connect, where the client has no
SparkContext and no JVM. Each function does the classic thing on a classic session, exactly as the jobs did before,
and its Connect-safe counterpart on a Connect session (artifacts, SQL, DataFrames). tests/connect holds the product
to this: no other module names these APIs.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

CLASSIC = "classic"
CONNECT = "connect"


def is_connect(spark) -> bool:
    """A Spark Connect session (pyspark.sql.connect), told by its class: importing the Connect client to compare
    would need its gRPC libraries even on a classic installation."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def connect_session(url: str, app_name: str):
    """A Spark Connect session to `url` (sc://host:port), also in a process that already runs a classic session
    (pyspark's generic builder refuses that with SESSION_ALREADY_EXIST; its Connect builder does not). pyspark's
    functions and pyspark.ml build Connect plans while SPARK_CONNECT_MODE_ENABLED is set, as the generic builder
    sets it."""
    import os

    from pyspark.sql.connect.session import SparkSession as ConnectSession

    os.environ["SPARK_CONNECT_MODE_ENABLED"] = "1"
    return ConnectSession.builder.remote(url).appName(app_name).getOrCreate()


def refuse_under_connect(spark, what: str, instead: str) -> None:
    """A library that drives Spark through the SparkContext (or RDDs) cannot run through Spark Connect: refused in
    one line, before any run starts, saying what does."""
    if spark is not None and is_connect(spark):
        from common.errors import UserInputError

        raise UserInputError(f"{what} cannot run through Spark Connect (SPARK_REMOTE is set): {instead}")


def connection_mode(spark) -> str:
    return CONNECT if is_connect(spark) else CLASSIC


def set_log_level(spark, level: str) -> None:
    """The server's log level is the server's own under Connect: nothing to set from the client."""
    if not is_connect(spark):
        spark.sparkContext.setLogLevel(level)


def app_name(spark) -> str:
    if is_connect(spark):
        return spark.conf.get("spark.app.name", None) or "spark-connect"
    return spark.sparkContext.appName


def master(spark) -> str | None:
    if is_connect(spark):
        return spark.conf.get("spark.master", None)
    return spark.sparkContext.master


def session_key(spark) -> str:
    """What a per-session cache keys on: files added to one SparkContext (or one Connect session) are not in
    another's."""
    if is_connect(spark):
        return f"connect:{spark.session_id}"
    return f"classic:{id(spark.sparkContext)}"


_PARALLELISM: dict[str, int] = {}


def default_parallelism(spark) -> int:
    """The task slots Spark spreads a job over. Under Connect: spark.default.parallelism when set, else the number
    of partitions Spark gives a range (its default parallelism), counted once per session."""
    if not is_connect(spark):
        return spark.sparkContext.defaultParallelism
    key = session_key(spark)
    if key not in _PARALLELISM:
        configured = spark.conf.get("spark.default.parallelism", None)
        if configured:
            _PARALLELISM[key] = int(configured)
        else:
            from pyspark.sql import functions as F

            partitions = spark.range(0, 1 << 16).select(F.spark_partition_id().alias("p")).distinct().count()
            _PARALLELISM[key] = max(1, int(partitions))
    return _PARALLELISM[key]


def setting(spark, key: str, default: str | None = None) -> str | None:
    """A Spark setting, including those fixed when the application started (spark.driver.memory ...). Under
    Connect only what the server's session exposes can be read; the rest is `default`."""
    if is_connect(spark):
        return spark.conf.get(key, default)
    return spark.sparkContext.getConf().get(key, default)


def java_version(spark) -> str | None:
    """The Java version of the session's JVM (the server's under Connect, asked through SQL)."""
    if is_connect(spark):
        row = spark.sql("SELECT java_method('java.lang.System', 'getProperty', 'java.version') AS v").first()
        return row.v if row is not None else None
    return spark.sparkContext._jvm.java.lang.System.getProperty("java.version")


def add_archive(spark, archive: str) -> None:
    """An archive unpacked on every executor, found there with SparkFiles.get(<its file name>)."""
    if is_connect(spark):
        spark.addArtifacts(archive, archive=True)
    else:
        spark.sparkContext.addArchive(archive)


def add_py_file(spark, path: str) -> None:
    """A .py/.zip/.egg put on the executors' Python path."""
    if is_connect(spark):
        spark.addArtifacts(path, pyfile=True)
    else:
        spark.sparkContext.addPyFile(path)


def mark_once(spark, what: str) -> bool:
    """True the first time `what` is asked for this SparkContext / Connect session, False after. Classic: a mark on
    the SparkContext object itself (a new context never inherits it)."""
    if not is_connect(spark):
        attribute = "_lifecycle_done_" + "".join(c if c.isalnum() else "_" for c in what)
        context = spark.sparkContext
        if getattr(context, attribute, False):
            return False
        setattr(context, attribute, True)
        return True
    key = (session_key(spark), what)
    if key in _DONE:
        return False
    _DONE.add(key)
    return True


_DONE: set[tuple[str, str]] = set()  # (Connect session, what) already done


class _LocalValue:
    """A broadcast's stand-in where there is no SparkContext: the value stays in the client's process, which is
    where code that cannot use Spark's executors (sequential trials) reads it."""

    def __init__(self, value):
        self.value = value

    def destroy(self) -> None:
        self.value = None


def broadcast(spark, value):
    """Something with `.value` and `.destroy()`: a broadcast variable on a classic session, the value itself held
    in this process under Connect (which has no broadcast variables)."""
    if is_connect(spark):
        return _LocalValue(value)
    return spark.sparkContext.broadcast(value)


def run_per_item(spark, items: list, function: Callable[[Iterable], Iterator]) -> list:
    """`function` over the items, one Spark task per item, results collected on the driver (in no set order).
    Classic: an RDD with one partition per item. Connect (no RDDs): a range with one row per partition, each task
    running `function` on its item and sending the pickled results back as binary."""
    if not is_connect(spark):
        return spark.sparkContext.parallelize(list(items), len(items)).mapPartitions(function).collect()
    import pandas as pd

    captured = list(items)

    def run_partition(frames):
        for frame in frames:
            for index in frame["id"]:
                for result in function([captured[int(index)]]):
                    yield pd.DataFrame({"result": [pickle.dumps(result)]})

    rows = spark.range(0, len(captured), 1, len(captured)).mapInPandas(run_partition, "result binary").collect()
    return [pickle.loads(row.result) for row in rows]


def hadoop(spark) -> tuple[Any, Any]:
    """(the JVM's org.apache.hadoop.fs package, the session's Hadoop configuration): classic sessions only; under
    Connect files go through pyarrow.fs (common.arrow_fs)."""
    if is_connect(spark):
        raise RuntimeError("Hadoop's FileSystem is not reachable through Spark Connect; use common.arrow_fs")
    return spark._jvm.org.apache.hadoop.fs, spark._jsc.hadoopConfiguration()


@contextmanager
def spark_model_files(spark=None) -> Iterator[None]:
    """mlflow.spark moves a Spark ML model between the cluster's storage (MLFLOW_DFS_TMP, /tmp/mlflow by default)
    and this process through the JVM's Hadoop client, which a Connect client does not have. While this is active
    on a Connect session those two copies go through pyarrow.fs instead: MLFLOW_DFS_TMP must then name storage that
    both the server and this process reach (a shared folder, HDFS, an object store). Classic: nothing changes.
    `spark` None: the active session."""
    if spark is None:
        from pyspark.sql import SparkSession

        spark = SparkSession.getActiveSession()
    if spark is None or not is_connect(spark):
        yield
        return
    from mlflow.spark import _HadoopFileSystem

    replaced = {"copy_to_local_file": _copy_to_local_file, "maybe_copy_from_uri": _copy_model_to_cluster_storage}
    saved = {name: _HadoopFileSystem.__dict__[name] for name in replaced}
    for name, function in replaced.items():
        setattr(_HadoopFileSystem, name, classmethod(function))
    try:
        yield
    finally:
        for name, original in saved.items():
            setattr(_HadoopFileSystem, name, original)


def _copy_to_local_file(_cls, source: str, target: str, remove_src: bool) -> None:
    """A model the server saved, copied here (mlflow.spark.save_model's last step)."""
    import pyarrow.fs as pafs

    from common.arrow_fs import filesystem_and_path

    filesystem, path = filesystem_and_path(source)
    pafs.copy_files(path, target, source_filesystem=filesystem, destination_filesystem=pafs.LocalFileSystem())
    if remove_src:
        filesystem.delete_dir(path)


def _copy_model_to_cluster_storage(_cls, source_uri: str, target: str, local_model_path: str | None = None) -> str:
    """A downloaded model copied where the server reads it (mlflow.spark.load_model's step before
    PipelineModel.load); returns that location."""
    import pyarrow.fs as pafs
    from mlflow.tracking.artifact_utils import _download_artifact_from_uri

    from common.arrow_fs import filesystem_and_path

    local = local_model_path or _download_artifact_from_uri(source_uri)
    filesystem, path = filesystem_and_path(target)
    pafs.copy_files(local, path, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=filesystem)
    return target
