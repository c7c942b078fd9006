"""`monitor` on 2 cores: the whole job over 10 million scored rows x 25 columns in 10 daily windows against a
registered version's baseline (goal <= 3 minutes), one more window of a million rows afterwards (only it is computed;
goal <= 1/5 of the full run), and, on one window of a million rows with known drift, Evidently's data-drift report
(pandas engine) beside `monitor` on the same rows: decisions per column, statistics, time. One run, side by side.

    python -m bench.monitoring [--quick] [--rows 10000000] [--days 10] [--reference-rows 50000]

--quick divides the rows by 20 (a smoke run). The Evidently side needs the bench extra
(`pip install -c requirements.lock -e '.[bench]'`); without it, that part is skipped and says so.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from pyspark.sql import functions as F

from bench._common import bench_settings, print_table, workdir
from bench._monitoring_data import DRIFTED_DAY, FEATURES, MODEL, one_day, register_model, write_scored
from common.spark import build_spark
from monitoring.monitor import MonitorParams, run

REPO = Path(__file__).resolve().parent.parent


def _monitor(spark, settings, folder: Path, output: Path) -> tuple[float, int]:
    started = time.perf_counter()
    result = run(spark, settings, MonitorParams(model_name=MODEL, input=str(folder), output=str(output)))
    return time.perf_counter() - started, len(result.computed_windows)


def _monitor_process(root: Path, settings, folder: Path, output: Path) -> float:
    """`python -m monitoring.monitor` as its own process (a JVM start and the imports included, no `mlflow run`)."""
    env = os.environ | {"MLFLOW_TRACKING_URI": settings.tracking_uri, "MLFLOW_EXPERIMENT_NAME": "bench"}
    env |= {"SPARK_MASTER": settings.spark_master, "SPARK_SHUFFLE_PARTITIONS": str(settings.shuffle_partitions)}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    command = [sys.executable, "-m", "monitoring.monitor", "--model-name", MODEL, "--input", str(folder)]
    started = time.perf_counter()
    subprocess.run([*command, "--output", str(output)], cwd=root, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def _side_by_side(spark, settings, root: Path, scored: Path, reference: pd.DataFrame) -> None:
    window = one_day(spark, scored, DRIFTED_DAY, root / "drifted-window")
    seconds, _ = _monitor(spark, settings, window, root / "monitoring-drifted")
    drift = spark.read.parquet(str(root / "monitoring-drifted" / "drift_metrics"))
    ours = drift.where(F.col("slice_key").isNull() & (F.col("comparison") == "baseline")).toPandas()
    try:
        import evidently  # noqa: F401

        from bench._evidently_side import compare, run_evidently
    except ImportError:
        print("\nEvidently is not installed (pip install -c requirements.lock -e '.[bench]'): side by side skipped")
        return
    loaded = time.perf_counter()
    current = pd.read_parquet(window, columns=FEATURES)
    load_seconds = time.perf_counter() - loaded
    decisions, default_seconds, values, statistic_seconds = run_evidently(reference[FEATURES], current)
    rows, disagreements = compare(ours, decisions, values)
    print_table(
        f"Drift of one window ({len(current):,} rows, known drift in f0, f1, c0; f2 shifted 0.05 sd) against the "
        f"baseline ({len(reference):,} training rows), {len(FEATURES)} features: monitor vs Evidently (pandas engine)",
        ["statistic", "same decision", "largest gap", "tolerance"],
        rows,
    )
    for line in disagreements:
        print(f"  differs: {line}")
    print_table(
        "Time of each on that window",
        ["job", "seconds"],
        [
            ["monitor (in-process, local[2]): all statistics of 25 columns, tables, run, report", seconds],
            ["Evidently: reading the window into pandas", load_seconds],
            ["Evidently: data-drift report, default methods (23 features)", default_seconds],
            ["Evidently: report of 6 statistics x their columns (as compared above)", statistic_seconds],
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20x fewer rows: a smoke run")
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--reference-rows", type=int, default=50_000)
    args = parser.parse_args()
    rows = args.rows // 20 if args.quick else args.rows
    new_rows = rows // args.days

    root = workdir()
    os.chdir(root)  # the runs' artifacts (./mlruns) stay in the bench folder
    settings = bench_settings(root)
    spark = build_spark(settings, app_name="bench-monitoring")
    registered = register_model(spark, args.reference_rows)
    scored, output = root / "scored", root / "monitoring"

    started = time.perf_counter()
    write_scored(spark, registered, rows, 0, args.days, scored)
    generate_seconds = time.perf_counter() - started
    full_seconds, full_windows = _monitor(spark, settings, scored, output)
    write_scored(spark, registered, new_rows, args.days, 1, scored)
    new_seconds, new_windows = _monitor(spark, settings, scored, output)
    write_scored(spark, registered, new_rows, args.days + 1, 1, scored)
    process_seconds = _monitor_process(root, settings, scored, output)

    load = os.getloadavg()
    print_table(
        f"monitor on local[2]: {rows:,} scored rows x 25 monitored columns in {args.days} daily windows, then one "
        f"window of {new_rows:,} more; load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (shared machine)",
        ["figure", "seconds", "windows computed", "x full run"],
        [
            ["generating the inference table with Spark (not part of monitor)", generate_seconds, args.days, "-"],
            ["monitor, whole job, in-process (goal <= 180 s)", full_seconds, full_windows, 1.0],
            [
                "monitor again after one new window, in-process (goal <= 0.2x)",
                new_seconds,
                new_windows,
                new_seconds / full_seconds,
            ],
            [
                "python -m monitoring.monitor after one more window (own process)",
                process_seconds,
                1,
                process_seconds / full_seconds,
            ],
        ],
    )
    _side_by_side(spark, settings, root, scored, registered.reference)
    spark.stop()


if __name__ == "__main__":
    main()
