"""Time and decimal columns through every batch path: a Parquet file as pandas writes it (datetime as
TIMESTAMP(NANOS), pandas' default; a time-zone-aware datetime; a date; a decimal) keeps every value, row by row, and
its kind of type (Spark holds microseconds, so nanosecond timestamps leave as microseconds, the same instants)."""

from __future__ import annotations

import datetime as dt
import decimal
import logging
from dataclasses import replace

import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from common.errors import UserInputError
from scoring.batch.score_batch import ScoreBatchParams
from scoring.batch.score_batch import run as score_batch
from tests.helpers import scoring_frame

TIME_COLUMNS = ["event_time", "event_local", "day", "amount"]


def with_time_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """The four columns after row_id: microsecond values in nanosecond columns (what pandas writes), an hour and a
    bit apart, across a daylight-saving change in Europe."""
    n = len(frame)
    times = pd.Timestamp("2024-03-30 22:15:00.123456") + pd.to_timedelta(np.arange(n) * 3_601_000_007, unit="us")
    out = frame.copy()
    out.insert(1, "event_time", pd.Series(times, dtype="datetime64[ns]"))
    out.insert(2, "event_local", out["event_time"].dt.tz_localize("UTC").dt.tz_convert("Europe/Berlin"))
    out.insert(3, "day", [dt.date(2023, 12, 31) + dt.timedelta(days=i) for i in range(n)])
    out.insert(4, "amount", [decimal.Decimal(i * 37 % 100_000) / 100 for i in range(n)])
    return out


def write_time_input(frame: pd.DataFrame, path) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.set_column(
        table.schema.get_field_index("amount"), "amount", pa.array(frame["amount"], pa.decimal128(9, 2))
    )
    assert str(table.schema.field("event_time").type) == "timestamp[ns]"
    assert str(table.schema.field("event_local").type) == "timestamp[ns, tz=Europe/Berlin]"
    pq.write_table(table, path)


def assert_time_columns_kept(out: pd.DataFrame, source: pd.DataFrame, output_schema: pa.Schema) -> None:
    """Row by row on row_id: the same instants, dates and decimals, with timestamp / date / decimal types."""
    got = out.sort_values("row_id", ignore_index=True)
    want = source.sort_values("row_id", ignore_index=True)
    assert got["row_id"].tolist() == want["row_id"].tolist()
    assert output_schema.field("event_time").type == pa.timestamp("us")  # naive stays naive
    local = output_schema.field("event_local").type
    assert pa.types.is_timestamp(local) and local.unit == "us" and local.tz in ("UTC", "Europe/Berlin", "+00:00")
    assert output_schema.field("day").type == pa.date32()
    assert output_schema.field("amount").type == pa.decimal128(9, 2)
    assert (got["event_time"].to_numpy() == want["event_time"].to_numpy()).all()
    assert (got["event_local"].dt.tz_convert("UTC") == want["event_local"].dt.tz_convert("UTC")).all()
    assert got["day"].tolist() == want["day"].tolist()
    assert got["amount"].tolist() == want["amount"].tolist()


def _own_predictions(frame: pd.DataFrame) -> pd.DataFrame:
    model = mlflow.sklearn.load_model("models:/cancer/1")
    features = frame.drop(columns=["row_id", "target", *TIME_COLUMNS])
    return pd.DataFrame({"row_id": frame["row_id"], "prediction": model.predict(features)})


@pytest.fixture
def time_input(tmp_path):
    frame = with_time_columns(scoring_frame())
    path = tmp_path / "events.parquet"
    write_time_input(frame, path)
    return frame, path


@pytest.mark.parametrize("strategy", ["auto", "files", "arrow", "pandas", "grouped", "spark_udf"])
def test_time_and_decimal_columns_pass_through_every_batch_path_unchanged(
    spark, settings, client, production_model, time_input, tmp_path, strategy
):
    frame, path = time_input
    params = ScoreBatchParams(model_uri="models:/cancer/production", input=str(path), output=str(tmp_path / "out"))
    result = score_batch(spark, settings, replace(params, strategy=strategy))

    assert (result.rows_in, result.rows_out) == (569, 569)
    path_taken = client.get_run(result.run_id).data.params["scoring_path"]
    assert path_taken == {"auto": "files"}.get(strategy, strategy)
    out = pd.read_parquet(tmp_path / "out")
    assert list(out.columns)[:5] == ["row_id", *TIME_COLUMNS]
    assert_time_columns_kept(out, frame, pq.read_schema(next((tmp_path / "out").glob("*.parquet"))))
    own = _own_predictions(frame)
    merged = out.merge(own, on="row_id", suffixes=("", "_own"))
    assert len(merged) == 569
    np.testing.assert_array_equal(merged["prediction"], merged["prediction_own"])


@pytest.mark.parametrize("strategy", ["auto", "files", "arrow"])
def test_a_timestamp_finer_than_a_microsecond_is_refused_naming_the_column(
    spark, settings, production_model, time_input, tmp_path, strategy
):
    frame, path = time_input
    frame.loc[7, "event_time"] += pd.Timedelta(nanoseconds=1)
    write_time_input(frame, path)
    with pytest.raises(UserInputError, match=r"column 'event_time' holds a timestamp with nanoseconds"):
        score_batch(
            spark,
            settings,
            ScoreBatchParams(
                model_uri="models:/cancer/production", input=str(path), output=str(tmp_path / "o"), strategy=strategy
            ),
        )
    assert not (tmp_path / "o").exists()


def test_auto_leaves_out_the_files_path_for_a_column_it_cannot_carry_and_says_why(
    spark, settings, client, production_model, time_input, tmp_path, caplog
):
    """A list column: Spark reads it, the files path does not carry it; `auto` scores through Spark instead."""
    frame, path = time_input
    frame.insert(1, "tags", [[int(i % 3), 7] for i in range(len(frame))])
    write_time_input(frame, path)
    with caplog.at_level(logging.INFO, logger="scoring"):  # score_batch says which path, strategies why not files
        result = score_batch(
            spark,
            settings,
            ScoreBatchParams(model_uri="models:/cancer/production", input=str(path), output=str(tmp_path / "out")),
        )
    assert client.get_run(result.run_id).data.params["scoring_path"] == "arrow"
    assert "scoring path not files: column 'tags' has Arrow type list<element: int64>" in caplog.text
    out = pd.read_parquet(tmp_path / "out").sort_values("row_id", ignore_index=True)
    assert [list(t) for t in out["tags"]] == frame["tags"].tolist()
    assert_time_columns_kept(
        out, frame.drop(columns="tags"), pq.read_schema(next((tmp_path / "out").glob("*.parquet")))
    )


def _land(table: pd.DataFrame, folder, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    staging = folder.parent / f".{name}"
    write_time_input(table, staging)
    staging.rename(folder / name)


def test_a_stream_carries_time_and_decimal_columns_and_sets_aside_a_file_with_nanoseconds(
    spark, settings, production_model, time_input, tmp_path
):
    from scoring.stream.score_stream import ScoreStreamParams
    from scoring.stream.score_stream import run as score_stream

    frame, _ = time_input
    _land(frame.iloc[:300], tmp_path / "in", "a.parquet")
    _land(frame.iloc[300:], tmp_path / "in", "b.parquet")
    finer = frame.iloc[:10].copy()
    finer.loc[3, "event_time"] += pd.Timedelta(nanoseconds=5)
    _land(finer, tmp_path / "in", "c-nanoseconds.parquet")
    config = ScoreStreamParams(
        model_uri="models:/cancer/production",
        input=str(tmp_path / "in"),
        output=str(tmp_path / "out"),
        checkpoint=str(tmp_path / "checkpoint"),
        quarantine=str(tmp_path / "quarantine"),
        max_files_per_trigger=3,
    )  # no ids: the columns besides the features are taken from the files, as score_batch keeps them

    score_stream(spark, settings, config)

    out = pd.read_parquet(tmp_path / "out")
    assert len(out) == 569
    assert list(out.columns)[:5] == ["row_id", *TIME_COLUMNS]
    written = pq.read_schema(next((tmp_path / "out").rglob("*.parquet")))
    assert_time_columns_kept(out, frame, written)
    merged = out.merge(_own_predictions(frame), on="row_id", suffixes=("", "_own"))
    np.testing.assert_array_equal(merged["prediction"], merged["prediction_own"])
    reasons = "\n".join(p.read_text() for p in (tmp_path / "quarantine").rglob("_reasons.json"))
    assert "c-nanoseconds.parquet" in reasons and "column 'event_time' holds a timestamp with nanoseconds" in reasons


def test_a_table_spark_wrote_with_its_default_int96_timestamps_is_read_as_it_is(spark, tmp_path):
    """pyarrow shows INT96 as timestamp[ns] too; only INT64 nanoseconds take the long detour."""
    from common.parquet_time import nanosecond_columns, read_parquet

    when = dt.datetime(2026, 1, 2, 3, 4, 5, 123456)
    spark.createDataFrame([(1, when)], "id int, scored_at timestamp").write.parquet(str(tmp_path / "int96"))
    assert nanosecond_columns(str(tmp_path / "int96")) == {}
    assert read_parquet(spark, str(tmp_path / "int96")).collect()[0]["scored_at"] == when
