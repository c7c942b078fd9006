"""Per-group training of 200 IoT devices: Spark `applyInPandas` (what train_per_group runs) vs a plain Python loop
over the groups in one process. Both sides call the same per-group function (fit, held-out metrics, skops bytes),
on the same generated fleet, side by side in one run.

    python -m bench.per_group_training [--devices 200] [--rows-per-device 200]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time

from threadpoolctl import threadpool_limits

from bench._common import bench_settings, best_time, print_table, workdir
from common.iot_devices import GROUP, LABEL, generate
from common.spark import build_spark
from training.per_group.executor import GroupTrainingPlan, fit_group
from training.per_group.steps import train_groups

ESTIMATORS = ("random_forest", "logistic_regression")


def _loop(fleet, plan: GroupTrainingPlan) -> list[dict]:
    """What one would write without Spark: pandas groupby, one fit after another."""
    return [fit_group(rows.drop(columns=[GROUP]), plan) for _, rows in fleet.groupby(GROUP, sort=False)]


def _loop_one_thread(fleet, plan: GroupTrainingPlan) -> list[dict]:
    """The same loop with BLAS limited to one thread, as the Spark tasks run (see training.per_group.executor)."""
    with threadpool_limits(1):
        return _loop(fleet, plan)


def _spin(_=None) -> float:
    started = time.perf_counter()
    total = 0
    for i in range(10_000_000):
        total += i
    return time.perf_counter() - started


def parallel_ceiling() -> float:
    """What two busy processes get done vs one, now: the most any 2-way parallelism can gain on this machine
    while other work shares its cores."""
    one = _spin()
    # fork: the children start with this module loaded, so the clock measures the loops, not imports.
    with multiprocessing.get_context("fork").Pool(2) as pool:
        started = time.perf_counter()
        pool.map(_spin, [None, None], chunksize=1)
        two = time.perf_counter() - started
    return 2 * one / two


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="per_group_training", description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--rows-per-device", type=int, default=200)
    args = parser.parse_args(argv)

    load_before, ceiling_before = os.getloadavg()[0], parallel_ceiling()  # before the JVM exists
    settings = bench_settings(workdir())
    spark = build_spark(settings, app_name="bench-per-group")
    cores = spark.sparkContext.defaultParallelism
    fleet = generate(args.devices, args.rows_per_device, edge_cases=False)
    df = spark.createDataFrame(fleet).cache()
    df.count()

    rows = []
    for estimator in ESTIMATORS:
        plan = GroupTrainingPlan(GROUP, LABEL, "classification", estimator, 42, 0.2, 50)
        train_groups(df.limit(2 * args.rows_per_device), plan, with_fallback=False)  # start the Python workers
        results = train_groups(df, plan, with_fallback=False)
        assert (results["status"] == "trained").sum() == args.devices, results["reason"].dropna().unique()[:3]
        loop_s = best_time(lambda plan=plan: _loop(fleet, plan))
        loop_1t_s = best_time(lambda plan=plan: _loop_one_thread(fleet, plan))
        spark_s = best_time(lambda plan=plan: train_groups(df, plan, with_fallback=False))
        rows.append([estimator, args.devices, loop_s, loop_1t_s, spark_s, loop_s / spark_s, loop_1t_s / spark_s])
    print_table(
        f"Training {args.devices} groups x {args.rows_per_device} rows, one model each (local[{cores}]), seconds",
        [
            "estimator",
            "groups",
            "python loop",
            "loop, 1 BLAS thread",
            "applyInPandas",
            "x loop",
            "x loop 1 thread",
        ],
        rows,
    )
    # The ratio needs the cores free: on a machine shared with other jobs, parallel work gains little.
    load_after, ceiling_after = os.getloadavg()[0], parallel_ceiling()
    print(f"load average (1 min) before / after: {load_before:.1f} / {load_after:.1f} on {os.cpu_count()} cores")
    print(f"parallel ceiling (two busy processes vs one) before / after: {ceiling_before:.2f}x / {ceiling_after:.2f}x")
    spark.stop()


if __name__ == "__main__":
    main()
