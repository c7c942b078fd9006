"""What the benchmarks share: a throw-away tracking store, seeded synthetic data, a timer, a table printer."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from common.settings import Settings


def bench_settings(workdir: Path, master: str = "local[2]") -> Settings:
    """A fresh SQLite store inside `workdir`; benchmarks never touch the user's ./mlflow.db."""
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    return Settings(tracking_uri=uri, spark_master=master, experiment_name="bench", shuffle_partitions=4)


def workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="bench-"))


def synthetic_classification(rows: int, features: int, seed: int = 0) -> pd.DataFrame:
    """`id`, f0..f{n-1} standard normal, and a label from a noisy linear rule (so models have work to do)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, features))
    weights = rng.standard_normal(features)
    label = (X @ weights + rng.standard_normal(rows) > 0).astype("int64")
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(features)])
    frame.insert(0, "id", np.arange(rows, dtype="int64"))
    frame["label"] = label
    return frame


def write_parquet_files(frame: pd.DataFrame, folder: Path, files: int) -> Path:
    """`frame` as `files` Parquet files in one folder, the shape a Spark job's output has."""
    folder.mkdir(parents=True)
    for index, chunk in enumerate(np.array_split(np.arange(len(frame)), files)):
        frame.iloc[chunk].to_parquet(folder / f"part-{index:05d}.parquet", index=False)
    return folder


def best_time(action: Callable[[], object], repeats: int = 2) -> float:
    """The fastest of `repeats` runs: the least disturbed by other work on a shared machine."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def print_table(title: str, header: list[str], rows: list[list[object]]) -> None:
    cells = [header, *[[_fmt(v) for v in row] for row in rows]]
    widths = [max(len(str(r[i])) for r in cells) for i in range(len(header))]
    print(f"\n{title}")
    for i, row in enumerate(cells):
        print(
            "  ".join(
                str(v).rjust(w) if j else str(v).ljust(w) for j, (v, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if i == 0:
            print("  ".join("-" * w for w in widths))


def _fmt(value: object) -> str:
    if isinstance(value, float) and value != value:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
