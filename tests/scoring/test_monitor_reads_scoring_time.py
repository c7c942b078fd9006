"""`monitor` cuts windows by `scored_at` (its default time column) in what score_batch writes and what serve's
inference log writes alike: both land in one inference table, every row falls in a window, the window counts every
row. In-process: the session's Spark, the real ASGI app with its log, a trained and registered model."""

import shutil
from datetime import UTC, datetime

import pandas as pd
import pytest
from pyspark.sql import functions as F

from common.datasets import load_table
from monitoring.monitor import MonitorParams
from monitoring.monitor import run as monitor
from monitoring.tables import read_table
from scoring.batch.score_batch import ScoreBatchParams
from scoring.batch.score_batch import run as score_batch
from scoring.serving.app import build_app
from scoring.serving.inference_log import InferenceLog
from scoring.serving.model_holder import ModelHolder
from tests.asgi import post_json
from tests.scoring.serving.conftest import split_body

pytestmark = pytest.mark.filterwarnings("ignore:.*Add type hints")
SERVED_ROWS = 40


def test_monitor_windows_batch_output_and_a_serve_log_by_their_scoring_time(
    spark, settings, production_model, tmp_path
):
    features = load_table("breast_cancer").frame.drop(columns=["target"])
    features.to_parquet(tmp_path / "input.parquet", index=False)
    started = datetime.now(UTC)
    score_batch(
        spark,
        settings,
        ScoreBatchParams(
            model_uri="models:/cancer/1", input=str(tmp_path / "input.parquet"), output=str(tmp_path / "batch")
        ),
    )
    log = InferenceLog(tmp_path / "log")
    app = build_app(ModelHolder.load("models:/cancer/1", reload_seconds=60), 10 * 2**20, log)
    assert post_json(app, split_body(features.head(SERVED_ROWS))).status == 200
    log.close()
    ended = datetime.now(UTC)

    table = tmp_path / "inference"  # one table: the batch job's parts and the log's files side by side
    table.mkdir()
    for source in [*(tmp_path / "batch").glob("*.parquet"), *(tmp_path / "log").glob("*.parquet")]:
        shutil.copy(source, table / f"{source.parent.name}-{source.name}")
    times = pd.concat(pd.read_parquet(p, columns=["scored_at"]) for p in table.iterdir())["scored_at"]
    assert len(times) == len(features) + SERVED_ROWS and times.notna().all()
    assert started <= times.min() and times.max() <= ended

    result = monitor(
        spark,
        settings,
        MonitorParams(model_name="cancer", input=str(table), output=str(tmp_path / "monitoring"), window="1d"),
    )
    assert result.rows_without_window == 0 and list(result.versions) == ["1"]
    assert len(result.computed_windows) == len({t.floor("D") for t in times})
    profile = read_table(spark, str(tmp_path / "monitoring"), "profile_metrics", "cancer")
    counted = profile.where((F.col("column_name") == "prediction") & (F.col("statistic") == "count"))
    assert sum(r["value"] for r in counted.collect()) == len(features) + SERVED_ROWS
