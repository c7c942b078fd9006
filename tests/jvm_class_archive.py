"""A class-data-sharing archive of the classes Spark jobs load, made once per machine (per Java and Spark install)
and used by every JVM a test starts through spark-submit: the test session's, a job process's, the Connect server's.

A Spark JVM spends much of its start reading and verifying some ten thousand classes from Spark's jars; mapped from
an archive instead, a small job's JVM measured 11.4 s of CPU without the archive and 6.4 s with it. The suite starts
dozens of JVMs on two cores, so that time is the suite's. The product's own JVMs are untouched.

The archive is written by a JVM that runs a small job of the kinds the tests run (tables, SQL, a fitted and saved
MLlib pipeline) with `-XX:ArchiveClassesAtExit`. A JVM whose class path differs from the archive's uses no archive
and runs as before; its CDS warnings are silenced (`-Xlog:cds*=off`) so that job output stays what it is."""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
from pathlib import Path

_JOB = """
import tempfile
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import RandomForestClassifier
from pyspark.ml.feature import StringIndexer, VectorAssembler
from pyspark.sql import SparkSession, functions as F
import pandas as pd

spark = (SparkSession.builder.master("local[2]").config("spark.sql.shuffle.partitions", "2")
         .config("spark.sql.execution.arrow.pyspark.enabled", "true").getOrCreate())
folder = tempfile.mkdtemp()
frame = pd.DataFrame({"x": [float(i % 17) for i in range(400)], "s": [str(i % 5) for i in range(400)],
                      "y": [i % 2 for i in range(400)]})
df = spark.createDataFrame(frame)
df.write.parquet(f"{folder}/t.parquet")
df.write.option("header", True).csv(f"{folder}/t.csv")
df = spark.read.parquet(f"{folder}/t.parquet").union(spark.read.option("header", True).option("inferSchema", True)
                                                     .csv(f"{folder}/t.csv").select("x", "s", "y"))
df.groupBy("s").agg(F.count("*"), F.avg("x"), F.expr("percentile_approx(x, 0.5)")).toPandas()
pipeline = Pipeline(stages=[StringIndexer(inputCol="s", outputCol="si", handleInvalid="keep"),
                            VectorAssembler(inputCols=["x", "si"], outputCol="f", handleInvalid="keep"),
                            RandomForestClassifier(featuresCol="f", labelCol="y", numTrees=3, maxDepth=3)])
model = pipeline.fit(df)
model.write().save(f"{folder}/model")
PipelineModel.load(f"{folder}/model").transform(df).select("prediction", "probability").toPandas()
jvm = spark.sparkContext._gateway.proc
spark.stop()
jvm.stdin.close()  # the JVM exits when its input closes, and writes the archive as it exits: wait for it
jvm.wait(timeout=300)
"""


def _install_key(base_options: str) -> str:
    """Changes when Java, Spark's jars or the JVM options change: an archive is valid for one of each."""
    import pyspark

    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr
    jars = Path(pyspark.__file__).parent / "jars"
    listing = sorted(f"{p.name}:{p.stat().st_size}:{int(p.stat().st_mtime)}" for p in jars.glob("*.jar"))
    return hashlib.sha256("\n".join([java, base_options, *listing]).encode()).hexdigest()[:16]


def _cache_folder() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "model-lifecycle-tests"


def with_class_archive(base_options: str) -> str:
    """`base_options` plus the archive's, the archive made first if this machine has none; `base_options` alone if
    it cannot be made (the tests then run as they did without it)."""
    folder = _cache_folder()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        archive = folder / f"spark-classes-{_install_key(base_options)}.jsa"
        with open(folder / "archive.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one process makes it; the others (test workers) wait and use it
            if not archive.exists():
                _make(archive, base_options)
    except (OSError, subprocess.SubprocessError) as exc:  # a read-only home, say: slower tests, not failed ones
        print(f"no JVM class archive in {folder}: {exc}", file=sys.stderr)
        return base_options
    if not archive.exists():
        return base_options
    return f"{base_options} -XX:SharedArchiveFile={archive} -Xlog:cds*=off"


def _make(archive: Path, base_options: str) -> None:
    partial = archive.with_suffix(f".partial-{os.getpid()}")
    env = {**os.environ, "SPARK_SUBMIT_OPTS": f"{base_options} -XX:ArchiveClassesAtExit={partial} -Xlog:cds*=off"}
    done = subprocess.run([sys.executable, "-c", _JOB], env=env, capture_output=True, text=True, timeout=600)
    if done.returncode == 0 and partial.exists():
        os.replace(partial, archive)  # whole or not at all: a JVM never maps a half-written archive
        for older in archive.parent.glob("spark-classes-*.jsa"):  # another install's (a JVM mapping it keeps it)
            if older != archive:
                older.unlink(missing_ok=True)
    else:
        partial.unlink(missing_ok=True)
        print(f"no JVM class archive ({done.returncode}): {done.stderr[-2000:]}", file=sys.stderr)
