"""The same jobs in classic mode (the driver in the job's process) and through Spark Connect (a thin client, the
driver in a Connect server on this machine, with the same master and driver memory), one run side by side:
score_batch of a scikit-learn model over `--rows` rows (strategy auto, which takes `files` for Parquet, and
`arrow`), and train_mllib on a real table (the Titanic passengers, with the title stage). Goal: Connect within
1.25x of classic.

    nice -n 5 python -m bench.connect [--rows 3000000] [--master local[2]]

Each mode runs in a process of its own (pyspark switches a whole process to Connect), against the same tracking
store and the same input files; the figures are each job's own seconds, session start excluded.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import mlflow

from bench._common import bench_settings, print_table, synthetic_classification, workdir, write_parquet_files
from lifecycle.team.processes import free_port
from lifecycle.team.spark_connect import SparkConnectServer

FEATURES = 20
SCORING = ("auto", "arrow")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3_000_000)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--mode", choices=("classic", "connect"), help=argparse.SUPPRESS)  # one side, in a child
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        _one_side(args.mode, args.folder)
        return

    folder = workdir()
    settings = bench_settings(folder, args.master)
    _prepare(folder, args.rows)
    server = SparkConnectServer(folder / "connect-server", "127.0.0.1", free_port(), args.master)
    server.start()
    try:
        figures = {}
        for mode, remote in (("classic", None), ("connect", server.url)):
            env = {**os.environ, "MLFLOW_TRACKING_URI": settings.tracking_uri, "SPARK_MASTER": args.master}
            env.pop("SPARK_REMOTE", None)
            if remote:
                env["SPARK_REMOTE"] = remote
            done = subprocess.run(
                [sys.executable, "-m", "bench.connect", "--mode", mode, "--folder", str(folder)],
                env=env, capture_output=True, text=True,
            )  # fmt: skip
            if done.returncode != 0:
                sys.exit(f"the {mode} side failed:\n{done.stderr[-4000:]}")
            figures[mode] = json.loads((folder / f"{mode}.json").read_text())
    finally:
        server.stop()
    rows = [
        [job, figures["classic"][job], figures["connect"][job], figures["connect"][job] / figures["classic"][job]]
        for job in figures["classic"]
    ]
    print_table(
        f"classic vs Spark Connect, {args.master}, one run each (seconds of the job; session start excluded)",
        ["job", "classic s", "connect s", "connect / classic"],
        rows,
    )


def _prepare(folder: Path, rows: int) -> None:
    """The input files and a registered logistic regression, shared by both sides."""
    from sklearn.linear_model import LogisticRegression

    from training.sklearn.model import log_sklearn_model

    frame = synthetic_classification(rows, FEATURES)
    write_parquet_files(frame.drop(columns="label"), folder / "input", 16)
    sample = frame.sample(50_000, random_state=0)
    features = sample.drop(columns=["id", "label"])
    mlflow.set_experiment("bench")
    with mlflow.start_run():
        log_sklearn_model(LogisticRegression(max_iter=500).fit(features, sample["label"]), features, "bench_lr")


def _one_side(mode: str, folder: Path) -> None:
    from common.settings import Settings
    from common.spark import build_spark
    from scoring.batch.score_batch import ScoreBatchParams
    from scoring.batch.score_batch import run as score_batch
    from training.mllib.train_mllib import TrainMllibParams
    from training.mllib.train_mllib import run as train_mllib

    settings = replace(Settings.from_env(), experiment_name="bench", shuffle_partitions=4)
    spark = build_spark(settings, app_name=f"bench-connect-{mode}")
    figures = {}
    for strategy in SCORING:
        params = ScoreBatchParams("models:/bench_lr/1", str(folder / "input"), str(folder / f"out-{mode}-{strategy}"))
        started = time.perf_counter()
        result = score_batch(spark, settings, replace(params, strategy=strategy))
        figures[f"score_batch {result.rows_in:,} rows, strategy {strategy}"] = time.perf_counter() - started
    started = time.perf_counter()
    train_mllib(spark, settings, TrainMllibParams(data="titanic", label="survived", title_from="name", num_trees=20))
    figures["train_mllib titanic (title stage, 20 trees)"] = time.perf_counter() - started
    (folder / f"{mode}.json").write_text(json.dumps(figures))


if __name__ == "__main__":
    main()
