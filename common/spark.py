"""The one place a SparkSession is built."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import zipfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from pyspark.sql import SparkSession

from common import spark_compat
from common.java import require_java
from common.settings import Settings

_logger = logging.getLogger(__name__)

# The project's own packages; executors on a cluster import them (e.g. the scoring functions run by mapInArrow).
PROJECT_PACKAGES = ("common", "lifecycle", "training", "scoring", "registry")
_PROJECT_ROOT = Path(__file__).resolve().parent.parent


def build_spark(settings: Settings, app_name: str = "model-lifecycle") -> SparkSession:
    """Build (or return the running) session for `settings.spark_master`, or a Spark Connect session when
    `settings.spark_remote` names a server (SPARK_REMOTE=sc://host:port).

    Local masters run Python workers with the driver's interpreter (else workers miss pandas/mlflow); on any
    other master, and always through Connect, the project's packages are shipped with the job so executors import
    the same code.
    """
    if settings.spark_remote:
        return _build_connect(settings, app_name)
    require_java()
    builder = (
        SparkSession.builder.master(settings.spark_master)
        .appName(app_name)
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.shuffle.partitions", str(settings.shuffle_partitions))
        .config("spark.driver.memory", settings.driver_memory)
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
    )
    if settings.spark_is_local or not os.environ.get("PYSPARK_PYTHON"):
        # The Python-side SparkContext reads the worker interpreter from this variable, not from
        # spark.pyspark.python; a remote cluster whose Python lives elsewhere sets it explicitly.
        os.environ["PYSPARK_PYTHON"] = sys.executable
    spark = builder.getOrCreate()
    spark_compat.set_log_level(spark, "WARN")
    if not settings.spark_is_local:
        ship_project_packages(spark)
    return spark


def _build_connect(settings: Settings, app_name: str) -> SparkSession:
    """A Connect session: no JVM here (so no Java check). Only session settings are set (the master and memory
    belong to the server). The project's packages always travel as artifacts: the server shares no path with
    this process."""
    spark = spark_compat.connect_session(settings.spark_remote, app_name)
    spark.conf.set("spark.sql.shuffle.partitions", str(settings.shuffle_partitions))
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    ship_project_packages(spark)
    return spark


class SparkStarter:
    """A job's session, built when first needed; `start_in_background` starts the JVM early (it takes seconds) so
    the job spends that time on work of its own (resolving and loading a model), and a job that turns out to need
    no Spark at all never starts one."""

    def __init__(self, settings: Settings, app_name: str, session: SparkSession | None = None):
        self._settings, self._app_name = settings, app_name
        self._future: Future[SparkSession] | None = None
        if session is not None:
            self._future = Future()
            self._future.set_result(session)

    @classmethod
    def of(cls, session: SparkSession) -> SparkStarter:
        """An already running session (a caller's own, or a test's)."""
        return cls(Settings.from_env(), spark_compat.app_name(session), session)

    def start_in_background(self) -> None:
        if self._future is None:
            self._future = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spark-start").submit(
                build_spark, self._settings, self._app_name
            )

    @property
    def started(self) -> bool:
        return self._future is not None

    def get(self) -> SparkSession:
        self.start_in_background()
        return self._future.result()


def ship_project_packages(spark: SparkSession) -> None:
    """Zip the project's packages and add them to the job, once per SparkContext (or Connect session)."""
    if not spark_compat.mark_once(spark, "project packages"):
        return
    archive = Path(tempfile.mkdtemp(prefix="lifecycle-pyfiles-")) / "lifecycle_project.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for package in PROJECT_PACKAGES:
            for path in (_PROJECT_ROOT / package).rglob("*.py"):
                zf.write(path, path.relative_to(_PROJECT_ROOT))
    spark_compat.add_py_file(spark, str(archive))
    _logger.info("shipped project packages to executors: %s", archive)
