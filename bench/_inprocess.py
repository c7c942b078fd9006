"""The in-process limit: the same work with no Spark at all. Two plain Python processes (one per core of local[2])
each read their half of the Parquet files with pyarrow, predict with NumPy input, and write Parquet."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

_MODEL = None


def _load(model_dir: str) -> None:
    global _MODEL
    import mlflow.sklearn

    _MODEL = mlflow.sklearn.load_model(model_dir)


def _score_files(files: list[str], out_dir: str) -> int:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = 0
    for path in files:
        table = pq.read_table(path)
        X = np.column_stack([table.column(name).to_numpy() for name in table.column_names if name != "id"])
        proba = _MODEL.predict_proba(X)
        prediction = _MODEL.classes_.take(proba.argmax(axis=1))
        out = pa.table({"id": table.column("id"), "prediction": prediction, "probability": proba[:, 1]})
        pq.write_table(out, Path(out_dir) / Path(path).name)
        rows += table.num_rows
    return rows


class InProcessScorer:
    """A warm pool: the processes start and load the model once, before anything is timed."""

    def __init__(self, model_dir: str, processes: int = 2):
        self.processes = processes
        # spawn: fresh interpreters, not forks of a driver that holds a JVM gateway and its threads.
        context = multiprocessing.get_context("spawn")
        self.pool = ProcessPoolExecutor(processes, mp_context=context, initializer=_load, initargs=(model_dir,))

    def score(self, folder: Path, out_dir: Path) -> int:
        out_dir.mkdir(parents=True, exist_ok=True)
        files = sorted(str(p) for p in folder.glob("*.parquet"))
        shares = [files[i :: self.processes] for i in range(self.processes)]
        return sum(self.pool.map(_score_files, shares, [str(out_dir)] * self.processes))

    def close(self) -> None:
        self.pool.shutdown()
