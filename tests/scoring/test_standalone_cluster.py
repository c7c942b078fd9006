"""score_batch on a real Spark standalone cluster: a master and a worker started from pyspark's own scripts, the
worker in its own JVM with its own Python workers, and no driver-local path reaching an executor."""

import mlflow
import numpy as np
import pandas as pd
import pytest

from lifecycle.team.processes import free_port
from lifecycle.team.spark_standalone import SparkStandalone
from tests.helpers import run_module, scoring_frame

pytestmark = pytest.mark.e2e


@pytest.fixture
def standalone_cluster(tmp_path):
    """The team stack's Spark part on its own: a master and a worker with 2 cores."""
    cluster = SparkStandalone(tmp_path / "spark", "127.0.0.1", free_port(), free_port(), free_port(), worker_cores=2)
    try:
        cluster.start()
        yield cluster.master_url, tmp_path / "spark" / "work"
    finally:
        cluster.stop()


def test_score_batch_runs_unchanged_on_a_standalone_cluster(settings, production_model, standalone_cluster, tmp_path):
    master_url, work_dir = standalone_cluster
    source = tmp_path / "input.parquet"
    scoring_frame().to_parquet(source, index=False)
    out = tmp_path / "scored"
    # Strategy files in slices of 100 rows: six tasks, each reading its slice and writing its part in the worker's
    # executor, through the path the cluster shares (here the local disk of the one machine).
    args = ["--model-uri", "models:/cancer/production", "--input", str(source), "--output", str(out)]
    args += ["--slice-rows", "100"]
    completed = run_module(
        "scoring.batch.score_batch", args, settings.tracking_uri, extra_env={"SPARK_MASTER": master_url}
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    assert "569 rows in, 569 rows out with cancer v1" in completed.stdout
    assert "scoring path files: 569 rows of 1 file(s), in 6 Spark tasks" in completed.stderr
    assert sorted(p.name for p in out.iterdir()) == ["_SUCCESS", *[f"part-{i:05d}.parquet" for i in range(6)]]

    scored = pd.read_parquet(out).sort_values("row_id", ignore_index=True)
    model = mlflow.sklearn.load_model("models:/cancer/1")
    np.testing.assert_array_equal(
        scored["prediction"], model.predict(scoring_frame().drop(columns=["row_id", "target"]))
    )
    # The executor ran in the worker: it left an application folder with the executor's own log.
    (app,) = list(work_dir.glob("app-*"))
    assert any(p.name == "stderr" for p in app.rglob("*"))
