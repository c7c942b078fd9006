"""The stream killed with SIGKILL (job, JVM and Python workers at once) at random moments, restarted on the same
checkpoint each time: the output, read back by Spark, holds every input row exactly once.

Two kills cover both cases a kill can meet: a run started on a fresh checkpoint, and a run that itself started on
what a killed run left (a third kill repeated the second case at the price of a JVM start); the last start then
recovers from the second."""

import os
import random
import signal
import threading
import time

import pytest
from pyspark.sql import functions as F

from tests.helpers import scoring_frame, start_module
from tests.scoring.test_score_stream import _land

pytestmark = pytest.mark.e2e
FILES = 12
KILLS = 2


def test_kill_and_restart_twice_loses_and_duplicates_nothing(
    spark, settings, production_model, tmp_path, run_in_process
):
    data = scoring_frame().drop(columns="target")
    chunks = [data.iloc[i::FILES] for i in range(FILES)]
    args = [
        "--model-uri",
        "models:/cancer/production",
        "--input",
        str(tmp_path / "in"),
        "--output",
        str(tmp_path / "out"),
        "--checkpoint",
        str(tmp_path / "checkpoint"),
        "--ids",
        "row_id BIGINT",
        "--max-files-per-trigger",
        "1",
    ]
    (tmp_path / "in").mkdir()
    feeder = threading.Thread(
        target=lambda: [
            (_land(c, tmp_path / "in", f"part-{i:02d}.parquet"), time.sleep(1.5)) for i, c in enumerate(chunks)
        ]
    )
    feeder.start()
    seed = random.randrange(1_000_000)
    rng = random.Random(seed)
    log = tmp_path / "stream.log"
    for _ in range(KILLS):
        committed = _committed(tmp_path / "out")
        job = start_module("scoring.stream.score_stream", [*args, "--trigger", "1 second"], settings.tracking_uri, log)
        # Kill mid-stream: once this run has committed a batch of its own, at a random moment within the next ones.
        deadline = time.monotonic() + 120
        while _committed(tmp_path / "out") <= committed and time.monotonic() < deadline and job.poll() is None:
            time.sleep(0.2)
        assert _committed(tmp_path / "out") > committed, f"no batch committed\n{log.read_text()[-3000:]}"
        time.sleep(rng.uniform(0.0, 2.5))
        os.killpg(job.pid, signal.SIGKILL)
        job.wait()
        assert job.returncode == -signal.SIGKILL, f"seed {seed}: the job ended by itself\n{log.read_text()[-3000:]}"
    feeder.join()
    # The last start drains what is left, in-process (a fourth JVM start proves nothing the three above do not): it
    # still starts on the checkpoint and the half-written output the last killed process left behind.
    drained = run_in_process("scoring.stream.score_stream", [*args, "--trigger", "available_now"])
    assert drained.returncode == 0, drained.stderr[-4000:]

    out = spark.read.parquet(str(tmp_path / "out"))
    ids = sorted(r.row_id for r in out.select("row_id").collect())
    assert ids == list(range(len(data))), f"seed {seed}: lost or duplicated rows"
    per_batch = out.groupBy("batch_id").agg(F.countDistinct("model_version").alias("versions")).toPandas()
    assert (per_batch["versions"] == 1).all()
    # What killed runs left half-written was cleared by the next start.
    assert not [p.name for p in (tmp_path / "out").iterdir() if "incomplete" in p.name]


def _committed(output) -> int:
    return len(list(output.glob("batch_id=*")))
