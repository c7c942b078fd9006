"""What `monitor` refuses, each in one line naming what is wrong, before anything is computed or recorded; and the
baseline of a version trained before training jobs logged one."""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from common.errors import UserInputError
from common.profile import FROM_HELD_OUT_SPLIT, load_reference_profile
from monitoring.baselines import version_baselines
from monitoring.monitor import MonitorParams, run
from tests.monitoring.conftest import MODEL, STREAMED, write_labels


def _table(monitored, tmp_path: Path, change=None) -> str:
    rows = monitored.scored.head(300).drop(columns=["y", "x4"])
    rows = change(rows) if change else rows
    rows.to_parquet(tmp_path / "scored.parquet", coerce_timestamps="us", allow_truncated_timestamps=True)
    return str(tmp_path / "scored.parquet")


def _monitor(spark, settings, tmp_path, input: str, **params):
    return run(
        spark,
        settings,
        MonitorParams(model_name=params.pop("model_name", MODEL), input=input, output=str(tmp_path / "out"), **params),
    )


def _refused(spark, settings, tmp_path, input: str, **params) -> str:
    with pytest.raises(UserInputError) as refused:
        _monitor(spark, settings, tmp_path, input, **params)
    assert not (tmp_path / "out").exists()  # nothing computed or written
    return str(refused.value)


def test_a_table_without_model_version_is_refused(spark, monitored, monitoring_settings, tmp_path):
    table = _table(monitored, tmp_path, lambda rows: rows.drop(columns=["model_version"]))
    assert "has no 'model_version' column" in _refused(spark, monitoring_settings, tmp_path, table)


def test_a_version_the_registry_does_not_have_is_refused_with_those_it_has(
    spark, monitored, monitoring_settings, tmp_path
):
    table = _table(monitored, tmp_path, lambda rows: rows.assign(model_version="7"))
    message = _refused(spark, monitoring_settings, tmp_path, table)
    assert "names version(s) 7 of model 'monitored', which the registry does not have; versions: 1 (None)" in message


def test_labels_with_duplicate_ids_are_refused_with_the_count(spark, monitored, monitoring_settings, tmp_path):
    labels = pd.read_parquet(write_labels(monitored, "labels_all", [0]))
    doubled = pd.concat([labels, labels.head(3)])
    doubled.to_parquet(tmp_path / "labels.parquet")
    message = _refused(
        spark,
        monitoring_settings,
        tmp_path,
        _table(monitored, tmp_path),
        labels=str(tmp_path / "labels.parquet"),
        ids=("row_id",),
    )
    assert "gives 3 id(s) more than one label (6 rows)" in message


def test_a_version_with_no_baseline_and_no_held_out_split_is_refused(spark, monitored, monitoring_settings, tmp_path):
    from sklearn.linear_model import LogisticRegression

    from training.sklearn.model import log_sklearn_model

    X = pd.DataFrame({"x0": [0.0, 1.0, 2.0, 3.0]})
    with mlflow.start_run():
        log_sklearn_model(LogisticRegression().fit(X, [0, 1, 0, 1]), X, registered_model_name="bare")
    table = _table(monitored, tmp_path, lambda rows: rows.assign(model_name="bare"))
    message = _refused(spark, monitoring_settings, tmp_path, table, model_name="bare")
    assert "bare version 1 has no reference profile (monitoring/reference_profile.json) and its run" in message
    assert "logged no held-out split (data/test.parquet): there is no baseline to compare it with" in message


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"thresholds": '{"psi": "high"}'}, "threshold 'psi' must be a number of 0 or more, got \"high\""),
        ({"thresholds": '{"ks": [0.01]}'}, "threshold 'ks' must be a number of 0 or more, got [0.01]"),
        ({"thresholds": '{"psy": 0.2}'}, "unknown threshold 'psy'; known: "),
        ({"window": "fortnight"}, "window must be like 1d, 6h, 15m, 30s, 1w or 'batch', got 'fortnight'"),
        ({"window": "batch"}, "window=batch needs the micro-batch id column 'batch_id'"),
        ({"time_column": "arrived"}, "has no time column 'arrived' to cut windows by"),
        ({"slice": "region"}, "slice column 'region' is not in inference table"),
        ({"labels": "LABELS", "ids": ("order_id",)}, "id column(s) order_id not in the labels table"),
    ],
)
def test_bad_parameters_are_refused_in_one_line(spark, monitored, monitoring_settings, tmp_path, params, expected):
    if params.get("labels") == "LABELS":
        params["labels"] = write_labels(monitored, "labels_all", [0])
    message = _refused(spark, monitoring_settings, tmp_path, _table(monitored, tmp_path), **params)
    assert expected in message and "\n" not in message


def test_a_version_trained_before_baselines_gets_one_from_its_held_out_split(spark, monitored, monitoring_settings):
    """Computed once through the scoring path, flagged as the smaller sample, and kept with the training run."""
    from sklearn.linear_model import LogisticRegression

    from training.sklearn.model import log_sklearn_model

    rows = monitored.train.head(400)
    X = rows[["x0", "x1"]]
    model = LogisticRegression().fit(X, rows.y)
    with mlflow.start_run() as trained, tempfile.TemporaryDirectory() as tmp:
        mlflow.log_params({"label": "y", "resolved_task": "classification"})
        X.assign(y=rows.y).tail(100).to_parquet(Path(tmp) / "test.parquet")
        mlflow.log_artifacts(tmp, "data")  # as training jobs log their held-out rows
        log_sklearn_model(model, X, registered_model_name="legacy")
    client = mlflow.MlflowClient()
    assert load_reference_profile(trained.info.run_id, client) is None
    profile = version_baselines(spark, client, "legacy", ["1"])["1"].profile
    assert profile["source"] == FROM_HELD_OUT_SPLIT
    assert {name: c["role"] for name, c in profile["columns"].items()} == {
        "x0": "feature",
        "x1": "feature",
        "y": "label",
        "prediction": "prediction",
        "probability": "probability",
    }
    predicted = model.predict(X.tail(100))
    assert profile["columns"]["prediction"]["categories"] == {
        str(k): int(v) for k, v in pd.Series(predicted).value_counts().items()
    }
    assert load_reference_profile(trained.info.run_id, client) == profile  # the next monitor finds it


def test_the_command_line_reports_a_refusal_in_one_line(monitoring_settings, spark, capsys):
    from common.cli import EXIT_USER_ERROR, run_cli
    from monitoring.monitor import main

    with pytest.raises(SystemExit) as exited:
        run_cli(main, ["--model-name", MODEL, "--input", "x", "--output", "y", "--thresholds", '{"psi": "x"}'])
    assert exited.value.code == EXIT_USER_ERROR
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: threshold 'psi' must be a number of 0 or more, got \"x\""
    )


def test_micro_batches_are_windows_of_their_own(spark, monitored, monitoring_settings, tmp_path):
    """A stream's output read back with its batch_id=<n> folders: one window per batch, ordered by batch id, its
    bounds its first and last row's time. The same output then refuses windows of another length."""
    table = _table(monitored, tmp_path, lambda rows: rows.assign(batch_id=rows.row_id % 3, model_name=STREAMED))
    result = _monitor(spark, monitoring_settings, tmp_path, table, model_name=STREAMED, window="batch", min_rows=50)
    assert result.computed_windows == [0, 1, 2]
    assert result.versions["1"].window == "batch 2" and result.versions["1"].status == "ok"
    state = spark.read.parquet(str(tmp_path / "out" / "monitor_state")).where("slice_value IS NULL").toPandas()
    rows = monitored.scored.head(300)
    first = rows[rows.row_id % 3 == 0].scored_at.min()
    assert sorted(state.window_key) == [0, 1, 2]
    assert state.set_index("window_key").window_start[0] == first.tz_convert(None).floor("us")
    with pytest.raises(UserInputError, match=f"holds windows of batch for model '{STREAMED}', not 1d"):
        _monitor(spark, monitoring_settings, tmp_path, table, model_name=STREAMED, window="1d", min_rows=50)
