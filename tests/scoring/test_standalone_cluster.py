"""score_batch on a real Spark standalone cluster: a master and a worker started from pyspark's own scripts, the
worker in its own JVM with its own Python workers, and no driver-local path reaching an executor."""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pyspark
import pytest

from tests.helpers import run_module, scoring_frame

pytestmark = pytest.mark.e2e
SPARK_CLASS = Path(pyspark.__file__).parent / "bin" / "spark-class"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [str(SPARK_CLASS), *args], stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )


def _wait_for(text: str, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} never appeared in {log}:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.5)


@pytest.fixture
def standalone_cluster(tmp_path):
    port = _free_port()
    master_url = f"spark://127.0.0.1:{port}"
    master_log, worker_log, work_dir = tmp_path / "master.log", tmp_path / "worker.log", tmp_path / "worker-work"
    common = ["--host", "127.0.0.1", "--webui-port", str(_free_port())]
    master = _start(["org.apache.spark.deploy.master.Master", *common, "--port", str(port)], master_log)
    worker = None
    try:
        _wait_for("I have been elected leader", master_log)
        worker = _start(
            [
                "org.apache.spark.deploy.worker.Worker",
                *common,
                "--cores",
                "2",
                "--memory",
                "2g",
                "--work-dir",
                str(work_dir),
                master_url,
            ],
            worker_log,
        )
        _wait_for("Successfully registered with master", worker_log)
        yield master_url, work_dir
    finally:
        for process in (worker, master):
            if process is not None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=60)


def test_score_batch_runs_unchanged_on_a_standalone_cluster(settings, production_model, standalone_cluster, tmp_path):
    master_url, work_dir = standalone_cluster
    source = tmp_path / "input.parquet"
    scoring_frame().to_parquet(source, index=False)
    out = tmp_path / "scored"
    args = ["--model-uri", "models:/cancer/production", "--input", str(source), "--output", str(out)]
    completed = run_module("scoring.score_batch", args, settings.tracking_uri, extra_env={"SPARK_MASTER": master_url})
    assert completed.returncode == 0, completed.stderr[-4000:]
    assert "569 rows in, 569 rows out with cancer v1" in completed.stdout

    scored = pd.read_parquet(out).sort_values("row_id", ignore_index=True)
    model = mlflow.sklearn.load_model("models:/cancer/1")
    np.testing.assert_array_equal(
        scored["prediction"], model.predict(scoring_frame().drop(columns=["row_id", "target"]))
    )
    # The executor ran in the worker: it left an application folder with the executor's own log.
    (app,) = list(work_dir.glob("app-*"))
    assert any(p.name == "stderr" for p in app.rglob("*"))
