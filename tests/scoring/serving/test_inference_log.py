"""The inference log and X-Request-Id: each answered request's rows land in Parquet with the model's own predictions
and probabilities, its version, its request id and the time, in batch scoring's columns; a full queue drops and
counts rows without failing a request; files appear whole; the request id is returned and written in the log lines.

The real ASGI app in-process (tests/asgi.py): its lifespan is not run, so the writer thread only runs where a test
starts it, which makes the queue's filling exact."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import mlflow
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from scoring.serving.inference_log import InferenceLog
from scoring.serving.request_id import tag_log_lines
from tests.asgi import call, post_json
from tests.scoring.serving.conftest import FEATURES, split_body
from tests.shapes.conftest import using_store

pytestmark = pytest.mark.filterwarnings("ignore:.*Add type hints")


def _read(folder) -> pd.DataFrame:
    files = sorted(p for p in folder.iterdir() if p.suffix == ".parquet")
    return pd.concat([pq.read_table(p).to_pandas() for p in files], ignore_index=True)


def test_each_answered_requests_rows_are_logged_with_the_models_answer_version_id_and_time(store, app_for, tmp_path):
    log = InferenceLog(tmp_path / "log")
    app = app_for("models:/cancer/1", inference_log=log)
    with using_store(store):
        model = mlflow.sklearn.load_model("models:/cancer/1")
    before = datetime.now(UTC)

    first = post_json(app, split_body(FEATURES.head(5)))  # no probability asked: the log keeps it anyway
    second = call(app, "POST", "/invocations", FEATURES.iloc[5:8].to_csv(index=False).encode(), "text/csv",
                  headers={"X-Request-Id": "client-id-7"})  # fmt: skip
    refused = post_json(app, {"dataframe_records": [{"mean_radius": 1.0}]})  # not answered: not logged
    log.close()

    assert (first.status, second.status, refused.status) == (200, 200, 400)
    logged = _read(tmp_path / "log")
    assert list(logged.columns) == [*FEATURES.columns, "prediction", "probability", "model_name", "model_version",
                                    "request_id", "scored_at"]  # fmt: skip
    assert len(logged) == 8
    pd.testing.assert_frame_equal(logged[list(FEATURES.columns)], FEATURES.head(8), check_dtype=False)
    assert logged["prediction"].tolist() == model.predict(FEATURES.head(8)).tolist()
    np.testing.assert_allclose(logged["probability"], model.predict_proba(FEATURES.head(8))[:, 1], rtol=1e-12)
    assert set(logged["model_name"]) == {"cancer"} and set(logged["model_version"]) == {"1"}
    assert logged["request_id"].tolist() == [first.headers["x-request-id"]] * 5 + ["client-id-7"] * 3
    assert str(logged["scored_at"].dtype) == "datetime64[us, UTC]"
    assert ((logged["scored_at"] >= before) & (logged["scored_at"] <= datetime.now(UTC))).all()
    assert log.status() | {"folder": None} == {
        "folder": None, "rows_written": 8, "rows_queued": 0, "rows_dropped": 0, "files_written": 1,
    }  # fmt: skip


def test_a_full_queue_drops_and_counts_rows_shown_on_health_and_every_request_is_answered(app_for, tmp_path):
    log = InferenceLog(tmp_path / "log", queue_rows=10)
    app = app_for("models:/cancer/1", inference_log=log)

    replies = [post_json(app, split_body(FEATURES.iloc[i : i + 4])) for i in range(0, 16, 4)]  # 4 x 4 rows
    health = call(app, "GET", "/health").json()["inference_log"]
    log.close()

    assert [r.status for r in replies] == [200] * 4
    assert (health["rows_queued"], health["rows_dropped"]) == (8, 8)  # the third and fourth did not fit in 10
    assert len(_read(tmp_path / "log")) == 8
    assert log.rows_written == 8 and log.rows_dropped == 8


def test_the_writer_thread_flushes_by_row_count_into_whole_files_named_by_process(app_for, tmp_path):
    import os

    folder = tmp_path / "log"
    log = InferenceLog(folder, flush_rows=6, flush_seconds=3600)
    app = app_for("models:/cancer/1", inference_log=log)
    log.start()
    for i in range(0, 12, 3):
        assert post_json(app, split_body(FEATURES.iloc[i : i + 3])).status == 200
    log.close()

    names = sorted(p.name for p in folder.iterdir())
    assert all(name.startswith("part-") and f"-{os.getpid()}-" in name for name in names), names
    assert not [n for n in names if n.endswith(".tmp")]
    assert len(_read(folder)) == 12 and log.rows_dropped == 0


def test_a_regressors_rows_are_logged_without_probability(app_for, tmp_path):
    from common.datasets import load_table

    log = InferenceLog(tmp_path / "log")
    app = app_for("models:/diabetes/1", inference_log=log)
    X = load_table("diabetes").frame.drop(columns=["target"]).head(3)

    assert post_json(app, split_body(X)).status == 200
    log.close()

    logged = _read(tmp_path / "log")
    assert "probability" not in logged.columns and len(logged) == 3


def test_the_request_id_is_taken_or_made_returned_and_written_in_the_requests_log_lines(app_for, caplog):
    app = app_for("models:/exploding/1")
    caplog.set_level(logging.INFO)
    tag_log_lines()  # as serve does at start; caplog's handler is on the root logger now

    given = call(app, "POST", "/invocations", json.dumps({"inputs": {"x": [-1.0]}}).encode(), "application/json",
                 headers={"X-Request-Id": "lb-1234"})  # fmt: skip
    made = call(app, "GET", "/health")
    unsafe = call(app, "GET", "/ping", headers={"X-Request-Id": "bad id\nwith a newline %s"})

    assert given.status == 500 and given.headers["x-request-id"] == "lb-1234"
    failure_lines = [r.getMessage() for r in caplog.records if "failed on a request" in r.getMessage()]
    assert failure_lines and all(line.endswith("[request_id=lb-1234]") for line in failure_lines)
    assert len(made.headers["x-request-id"]) == 32
    assert unsafe.headers["x-request-id"] != "bad id\nwith a newline %s" and len(unsafe.headers["x-request-id"]) == 32
