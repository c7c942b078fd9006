import json
import threading
import time

import mlflow
import numpy as np
import pandas as pd
import pytest

from common.errors import UserInputError
from common.model_uri import resolve_model_uri
from registry.stages import promote
from scoring.stream.score_stream import ScoreStreamParams, parse_trigger, run
from scoring.stream.state import StreamState
from tests.helpers import scoring_frame
from training.sklearn.train_sklearn import TrainSklearnParams
from training.sklearn.train_sklearn import run as train


def _config(tmp_path, **overrides) -> ScoreStreamParams:
    values = dict(
        model_uri="models:/cancer/production",
        input=str(tmp_path / "in"),
        output=str(tmp_path / "out"),
        checkpoint=str(tmp_path / "checkpoint"),
        quarantine=str(tmp_path / "quarantine"),
        max_files_per_trigger=2,
    )
    return ScoreStreamParams(**{**values, **overrides})


def _land(frame: pd.DataFrame, folder, name: str, fmt: str = "parquet") -> None:
    """Write beside the folder, then move in: a stream must only ever see whole files."""
    folder.mkdir(parents=True, exist_ok=True)
    staging = folder.parent / f".{name}"
    frame.to_parquet(staging, index=False) if fmt == "parquet" else frame.to_csv(staging, index=False)
    staging.rename(folder / name)


def _land_with_corrupt_pages(frame: pd.DataFrame, folder, name: str) -> None:
    """A Parquet file whose footer and schema read fine but whose compressed data pages are damaged."""
    staging = folder.parent / f".{name}"
    frame.to_parquet(staging, index=False, compression="snappy", use_dictionary=False)
    damaged = bytearray(staging.read_bytes())
    for i in range(200, len(damaged) // 2, 7):
        damaged[i] ^= 0xFF
    staging.write_bytes(bytes(damaged))
    staging.rename(folder / name)


def _own_predictions(frame: pd.DataFrame, version: str) -> np.ndarray:
    model = mlflow.sklearn.load_model(f"models:/cancer/{version}")
    return model.predict(frame.drop(columns=["row_id", "target"], errors="ignore"))


def test_parquet_stream_scores_good_files_once_and_quarantines_bad_ones(
    spark, settings, client, production_model, tmp_path
):
    data = scoring_frame().drop(columns="target")
    folder = tmp_path / "in"
    for i in range(3):
        _land(data.iloc[i * 100 : (i + 1) * 100], folder, f"good-{i}.parquet")
    _land(data.iloc[300:310].drop(columns="worst_area"), folder, "no-worst-area.parquet")
    _land(data.iloc[310:320].assign(mean_area=lambda f: f["mean_area"].astype(str)), folder, "text-area.parquet")
    (folder / "garbage.parquet").write_bytes(b"definitely not parquet")
    _land_with_corrupt_pages(data.iloc[320:400], folder, "corrupt-pages.parquet")

    run(spark, settings, _config(tmp_path, ids="row_id BIGINT"))

    out = pd.read_parquet(tmp_path / "out").sort_values("row_id", ignore_index=True)
    assert out["row_id"].tolist() == list(range(300))
    assert list(out.columns) == [
        "row_id",
        "prediction",
        "probability",
        "model_name",
        "model_version",
        "scored_at",
        "batch_id",
    ]
    np.testing.assert_array_equal(out["prediction"], _own_predictions(data.iloc[:300], "1"))
    assert (out["model_version"] == "1").all()

    reasons = {}
    for path in (tmp_path / "quarantine" / "files").glob("batch_id=*/_reasons.json"):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            reasons[record["file"].rsplit("/", 1)[-1]] = record["reason"]
            assert (path.parent / record["file"].rsplit("/", 1)[-1]).exists()  # the file itself is kept there
    assert reasons["no-worst-area.parquet"] == "missing column(s) worst_area"
    assert reasons["text-area.parquet"] == "column mean_area is string, expected double"
    assert reasons["garbage.parquet"].startswith("unreadable as parquet")
    assert reasons["corrupt-pages.parquet"].startswith("unreadable as parquet")  # its footer was fine

    (stream_run,) = client.search_runs(
        [client.get_experiment_by_name(settings.experiment_name).experiment_id], "attributes.run_name = 'score_stream'"
    )
    history = client.get_metric_history(stream_run.info.run_id, "rows_scored")
    assert sum(m.value for m in history) == 300 and sorted(m.step for m in history) == list(range(4))
    assert sum(m.value for m in client.get_metric_history(stream_run.info.run_id, "files_quarantined")) == 4


def test_csv_rows_that_do_not_fit_are_quarantined_with_the_reason_and_columns_bind_by_name(
    spark, settings, production_model, tmp_path
):
    data = scoring_frame().drop(columns="target").iloc[:60]
    reordered = data[list(reversed(data.columns))]  # CSV column order must not matter
    _land(reordered.iloc[:30], tmp_path / "in", "a.csv", fmt="csv")
    broken = data.iloc[30:].astype({"mean_area": object})
    broken.loc[broken.index[:2], "mean_area"] = "n/a"
    _land(broken, tmp_path / "in", "b.csv", fmt="csv")

    run(spark, settings, _config(tmp_path, format="csv", ids="row_id BIGINT"))

    out = pd.read_parquet(tmp_path / "out").sort_values("row_id", ignore_index=True)
    assert out["row_id"].tolist() == list(range(30)) + list(range(32, 60))
    expected = _own_predictions(data.drop(index=[30, 31]), "1")
    np.testing.assert_array_equal(out["prediction"], expected)
    quarantined = pd.read_parquet(tmp_path / "quarantine" / "rows").sort_values("row_id")
    assert quarantined["row_id"].tolist() == ["30", "31"]  # as read: text
    assert quarantined["_quarantine_reason"].tolist() == ["column mean_area: n/a is not double"] * 2
    assert quarantined["_source_file"].str.endswith("b.csv").all()


def test_a_replayed_batch_is_scored_by_the_version_recorded_for_it(spark, settings, client, production_model, tmp_path):
    data = scoring_frame().drop(columns="target")
    _land(data.iloc[:50], tmp_path / "in", "first.parquet")
    _land(data.iloc[50:100], tmp_path / "in", "second.parquet")
    # The state a crash leaves behind: batch 0's version recorded, nothing committed; since then v2 was promoted.
    v1 = resolve_model_uri(client, "models:/cancer/production")
    StreamState(spark, str(tmp_path / "checkpoint")).record_model_for_batch(0, v1)
    train(settings, TrainSklearnParams(data="breast_cancer", estimator="random_forest", model_name="cancer"))
    promote(client, "cancer", "2", "Production")

    run(spark, settings, _config(tmp_path, max_files_per_trigger=1, ids="row_id BIGINT"))

    out = pd.read_parquet(tmp_path / "out")
    versions = out.groupby("batch_id", observed=True)["model_version"].unique().to_dict()
    assert {int(k): list(v) for k, v in versions.items()} == {0: ["1"], 1: ["2"]}


def test_a_running_stream_follows_promotions_one_version_per_batch(spark, settings, client, production_model, tmp_path):
    data = scoring_frame().drop(columns="target")
    train(
        settings, TrainSklearnParams(data="breast_cancer", estimator="random_forest", model_name="cancer")
    )  # version 2, not promoted
    _land(data.iloc[:100], tmp_path / "in", "before.parquet")
    config = _config(tmp_path, trigger="1 second", max_files_per_trigger=1, ids="row_id BIGINT")
    thread = threading.Thread(target=run, args=(spark, settings, config))
    thread.start()
    try:
        _wait_for(lambda: (tmp_path / "out" / "batch_id=0").exists())
        promote(client, "cancer", "2", "Production")
        _land(data.iloc[100:200], tmp_path / "in", "after.parquet")
        _wait_for(lambda: len(list((tmp_path / "out").glob("batch_id=*"))) >= 2)
    finally:
        for query in spark.streams.active:
            query.stop()
        thread.join(timeout=60)
    out = pd.read_parquet(tmp_path / "out").sort_values("row_id", ignore_index=True)
    assert out["row_id"].tolist() == list(range(200))
    by_batch = out.groupby("batch_id", observed=True)["model_version"].nunique()
    assert (by_batch == 1).all()  # one version per micro-batch
    assert set(out.loc[out["row_id"] < 100, "model_version"]) == {"1"}
    assert set(out.loc[out["row_id"] >= 100, "model_version"]) == {"2"}
    np.testing.assert_array_equal(out["prediction"][100:], _own_predictions(data.iloc[100:200], "2"))


def _wait_for(condition, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the stream did not get there in time")
        time.sleep(0.5)


@pytest.mark.parametrize(
    ("overrides", "kwargs", "message"),
    [
        ({"model_uri": "models:/cancer/staging"}, {}, "no version in stage Staging"),
        ({"input": "/no/such/folder"}, {}, "input folder /no/such/folder does not exist"),
        ({"trigger": "sometimes"}, {}, "trigger must be available_now or an interval"),
        ({}, {"ids": "mean_radius DOUBLE"}, "id column.*mean_radius are model features"),
        ({}, {"ids": "row id,"}, "ids is not a DDL column list"),
        ({}, {"schema": "row_id BIGINT, mean_radius STRING"}, "schema lacks the model's feature column"),
    ],
)
def test_bad_stream_settings_are_refused_before_the_stream_starts(
    spark, settings, production_model, tmp_path, overrides, kwargs, message
):
    (tmp_path / "in").mkdir()
    with pytest.raises(UserInputError, match=message):
        run(spark, settings, _config(tmp_path, **overrides, **kwargs))
    assert not (tmp_path / "out").exists() and not spark.streams.active


def test_trigger_parsing():
    assert parse_trigger("available_now") == {"availableNow": True}
    assert parse_trigger("30 seconds") == {"processingTime": "30 seconds"}


@pytest.mark.parametrize("strategy", ["pandas", "spark_udf"])
def test_the_stream_scores_with_the_chosen_strategy(spark, settings, client, production_model, tmp_path, strategy):
    data = scoring_frame().drop(columns="target")
    _land(data.iloc[:120], tmp_path / "in", "a.parquet")
    _land(data.iloc[120:200], tmp_path / "in", "b.parquet")

    run(spark, settings, _config(tmp_path, strategy=strategy, ids="row_id BIGINT"))

    out = pd.read_parquet(tmp_path / "out").sort_values("row_id", ignore_index=True)
    assert out["row_id"].tolist() == list(range(200))
    np.testing.assert_array_equal(out["prediction"], _own_predictions(data.iloc[:200], "1"))
    (tracked,) = client.search_runs([e.experiment_id for e in client.search_experiments()], "run_name = 'score_stream'")
    assert tracked.data.params["strategy"] == strategy


def test_an_unknown_stream_strategy_is_refused_before_the_stream_starts(spark, settings, production_model, tmp_path):
    (tmp_path / "in").mkdir()
    with pytest.raises(UserInputError, match="unknown scoring strategy 'rowwise'; choose one of: auto, arrow, pandas"):
        run(spark, settings, _config(tmp_path, strategy="rowwise", ids="row_id BIGINT"))
    assert not (tmp_path / "checkpoint").exists()


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_without_ids_the_stream_carries_the_same_columns_as_score_batch(
    spark, settings, client, production_model, tmp_path, fmt, caplog
):
    import logging

    from scoring.batch.score_batch import ScoreBatchParams
    from scoring.batch.score_batch import run as score_batch

    data = scoring_frame().drop(columns="target").iloc[:90]
    data.insert(1, "site", [f"site {i % 3}" for i in range(len(data))])  # a string id nobody declared
    _land(data.iloc[:40], tmp_path / "in", f"a.{fmt}", fmt=fmt)
    batch_input = tmp_path / f"batch.{fmt}"
    data.iloc[:40].to_parquet(batch_input, index=False) if fmt == "parquet" else data.iloc[:40].to_csv(
        batch_input, index=False
    )
    score_batch(
        spark,
        settings,
        ScoreBatchParams(
            model_uri="models:/cancer/production", input=str(batch_input), output=str(tmp_path / "batch_out")
        ),
    )

    run(spark, settings, _config(tmp_path, format=fmt))  # no ids: taken from a.<fmt>, kept in the checkpoint

    batch_out = pd.read_parquet(tmp_path / "batch_out").sort_values("row_id", ignore_index=True)
    stream_out = pd.read_parquet(tmp_path / "out").sort_values("row_id", ignore_index=True)
    assert list(stream_out.columns) == [*batch_out.columns, "batch_id"]
    # Row by row the same but the scoring time: one per batch job, one per micro-batch.
    pd.testing.assert_frame_equal(
        stream_out.drop(columns=["batch_id", "scored_at"]), batch_out.drop(columns="scored_at")
    )
    assert stream_out["scored_at"].notna().all() and batch_out["scored_at"].nunique() == 1
    assert (stream_out.groupby("batch_id")["scored_at"].nunique() == 1).all()

    # A later file brings a column nobody declared: scored, the column counted and named, the schema kept.
    _land(data.iloc[40:90].assign(operator="ann"), tmp_path / "in", f"b.{fmt}", fmt=fmt)
    # A file without a column that was taken from the first files (not declared): scored, the column null there.
    later = scoring_frame().drop(columns="target").iloc[90:110]
    _land(later, tmp_path / "in", f"c.{fmt}", fmt=fmt)
    with caplog.at_level(logging.WARNING, logger="scoring.stream.micro_batch"):
        run(spark, settings, _config(tmp_path, format=fmt))  # a restart, again without ids
    out = pd.read_parquet(tmp_path / "out").sort_values("row_id", ignore_index=True)
    assert out["row_id"].tolist() == list(range(110)) and list(out.columns) == list(stream_out.columns)
    assert out["site"].iloc[:90].tolist() == data["site"].tolist() and out["site"].iloc[90:].isna().all()
    everything = pd.concat([data.drop(columns="site"), later])
    np.testing.assert_array_equal(out["prediction"], _own_predictions(everything, "1"))
    assert not (tmp_path / "quarantine").exists() or not any((tmp_path / "quarantine").rglob("*.parquet"))
    assert "column(s) operator in 1 file(s) are not carried to the output" in caplog.text
    run_id = StreamState(spark, str(tmp_path / "checkpoint")).run_id()
    undeclared = {m.step: m.value for m in client.get_metric_history(run_id, "undeclared_columns")}
    assert undeclared == {0: 0.0, 1: 1.0}  # b and c came in one micro-batch
    assert client.get_run(run_id).data.params["carried_columns_from"] == "inferred from 1 file(s) present at start"


def test_declared_ids_that_would_change_a_checkpoints_output_schema_are_refused(
    spark, settings, production_model, tmp_path
):
    data = scoring_frame().drop(columns="target").iloc[:20]
    _land(data.assign(site="north"), tmp_path / "in", "a.parquet")
    run(spark, settings, _config(tmp_path))
    with pytest.raises(UserInputError, match=r"carries the column\(s\) row_id bigint, site string; the declared ones"):
        run(spark, settings, _config(tmp_path, ids="row_id BIGINT"))
    run(spark, settings, _config(tmp_path, ids="row_id BIGINT, site STRING"))  # the same columns: accepted


def test_an_input_column_named_like_an_output_column_is_refused_before_the_stream_starts(
    spark, settings, production_model, tmp_path
):
    data = scoring_frame().drop(columns="target").iloc[:20]
    _land(data.assign(prediction=1.0), tmp_path / "in", "a.parquet")
    with pytest.raises(UserInputError, match=r"input column\(s\) prediction have the name of a column the stream"):
        run(spark, settings, _config(tmp_path))
    assert not (tmp_path / "out").exists()
