"""The held-out split every training run logs, written and read here only: `data/test.parquet` in the run's
artifacts, the test rows' features and label as the data had them. The promotion gate, `reproduce`, the ONNX parity
check and monitoring score a model again on it with no data of the user's."""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

TEST_SPLIT = "data/test.parquet"


def log_test_split(rows: pd.DataFrame | pa.Table) -> None:
    """Log `rows` (features and label; pandas, Arrow or a Spark DataFrame) as the active run's held-out split."""
    folder, name = TEST_SPLIT.split("/")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        if isinstance(rows, pd.DataFrame):
            rows.to_parquet(path, index=False)
        elif isinstance(rows, pa.Table):
            pq.write_table(rows, path)
        else:  # a Spark DataFrame, written by Spark (a folder of parts) so its rows never pass through the driver
            rows.write.parquet(str(path))
        mlflow.log_artifacts(tmp, artifact_path=folder)


def download_test_split(run_id: str, destination: str, client: mlflow.MlflowClient | None = None) -> str:
    """The run's held-out split downloaded under `destination`: a Parquet file, or a folder of parts (MLflow's
    error when the run logged none)."""
    return (client or mlflow.MlflowClient()).download_artifacts(run_id, TEST_SPLIT, destination)


def logged_test_split(run_id: str) -> pa.Table:
    """The held-out rows a training run logged, in the types they were written with."""
    with tempfile.TemporaryDirectory() as tmp:
        return pq.read_table(Path(download_test_split(run_id, tmp)))
