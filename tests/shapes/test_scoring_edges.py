"""Scoring inputs at the edges of the matrix, on models the matrix already trained: a header-only CSV, a stream
started without `ids` (known defect 2), and an input column named like one scoring adds."""

from __future__ import annotations

from dataclasses import replace

import mlflow
import pandas as pd
import pytest

from common.errors import UserInputError
from registry.stages import promote as move_to_stage
from scoring.batch.score_batch import ScoreBatchParams
from scoring.batch.score_batch import run as score_batch
from scoring.stream.score_stream import ScoreStreamParams
from scoring.stream.score_stream import run as score_stream
from tests.shapes import chain
from tests.shapes.shapes import BY_ID

TRAINERS = ("sklearn", "mllib")


def _in_production(trained, own_store):
    trained.require_model()
    settings = own_store(trained)
    move_to_stage(mlflow.MlflowClient(), trained.model_name, "1", "Production")
    return settings


def _config(trained, tmp_path, fmt: str) -> ScoreStreamParams:
    return ScoreStreamParams(
        model_uri=f"models:/{trained.model_name}/production",
        input=str(tmp_path / "in"),
        output=str(tmp_path / "out"),
        checkpoint=str(tmp_path / "checkpoint"),
        quarantine=str(tmp_path / "quarantine"),
        format=fmt,
        max_files_per_trigger=1,
    )


@pytest.mark.parametrize("trainer", TRAINERS)
def test_score_batch_refuses_a_header_only_csv_before_writing_or_tracking_anything(
    spark, trained_models, own_store, tmp_path, trainer
):
    trained = trained_models.get(trainer, BY_ID["csv_quoted_commas"])
    settings = _in_production(trained, own_store)
    client = mlflow.MlflowClient()
    header_only = tmp_path / "header-only.csv"
    trained.frame.iloc[:0].to_csv(header_only, index=False)
    assert header_only.read_text().splitlines() == [",".join(trained.frame.columns)]
    runs_before = len(chain.all_runs(client))

    with pytest.raises(UserInputError, match=r"input '.*header-only\.csv' has no rows"):
        score_batch(
            spark,
            settings,
            ScoreBatchParams(
                model_uri=f"models:/{trained.model_name}/production", input=str(header_only), output=str(tmp_path / "o")
            ),
        )

    assert not (tmp_path / "o").exists()
    assert len(chain.all_runs(client)) == runs_before


@pytest.mark.parametrize(
    ("trainer", "shape_id"),
    [("sklearn", "odd_names"), ("sklearn", "csv_quoted_commas"), ("mllib", "several_strings_multiclass"),
     ("mllib", "csv_quoted_commas")],
)  # fmt: skip
def test_a_stream_without_ids_keeps_the_columns_score_batch_keeps(
    spark, trained_models, own_store, tmp_path, trainer, shape_id
):
    """Known defect 2: without `ids`, score_stream dropped every non-feature column."""
    shape = BY_ID[shape_id]
    trained = trained_models.get(trainer, shape)
    settings = _in_production(trained, own_store)
    source = chain.read_table(trained.data, shape.fmt)
    n = len(source)
    chain.land(source.iloc[: n // 2], tmp_path / "in", f"a.{shape.fmt}", shape.fmt)
    chain.land(source.iloc[n // 2 :], tmp_path / "in", f"b.{shape.fmt}", shape.fmt)
    uri = f"models:/{trained.model_name}/production"
    score_batch(
        spark, settings, ScoreBatchParams(model_uri=uri, input=str(trained.data), output=str(tmp_path / "batch"))
    )

    score_stream(spark, settings, _config(trained, tmp_path, shape.fmt))  # no ids

    batch = pd.read_parquet(tmp_path / "batch")
    stream = pd.read_parquet(tmp_path / "out").drop(columns="batch_id")
    assert sorted(stream.columns) == sorted(batch.columns)
    assert len(stream) == len(batch) == n
    kept = [c for c in batch.columns if c not in chain.OUTPUTS]
    assert kept == trained.passthrough
    scored = [c for c in ("prediction", "probability") if c in batch.columns]
    chain.assert_matches_model(stream, batch[[shape.key, *scored]], shape.key)
    chain.assert_passthrough_kept(stream, batch, kept, shape.key)


@pytest.mark.parametrize("trainer", TRAINERS)
def test_a_scoring_input_column_named_like_an_output_is_refused_never_overwritten(
    spark, trained_models, own_store, tmp_path, trainer
):
    shape = BY_ID["no_strings_binary01"]
    trained = trained_models.get(trainer, shape)
    settings = _in_production(trained, own_store)
    uri = f"models:/{trained.model_name}/production"
    frame = trained.frame.assign(prediction=-1.0, model_version="from the input")
    path = tmp_path / "clash.parquet"
    frame.to_parquet(path, index=False)

    with pytest.raises(UserInputError, match=r"input already has column\(s\) prediction, model_version"):
        score_batch(spark, settings, ScoreBatchParams(model_uri=uri, input=str(path), output=str(tmp_path / "batch")))
    assert not (tmp_path / "batch").exists()

    # The stream told to carry these columns: refused before it starts, or the file quarantined saying why;
    # never scored with the input's `prediction` / `model_version` replaced.
    chain.land(frame, tmp_path / "in", "clash.parquet", "parquet")
    ids = "row_id BIGINT, target BIGINT, prediction DOUBLE, model_version STRING"
    config = replace(_config(trained, tmp_path, "parquet"), ids=ids)
    try:
        score_stream(spark, settings, config)
    except UserInputError as exc:
        assert "prediction" in str(exc) and "model_version" in str(exc)
    else:
        reasons = "\n".join(p.read_text() for p in (tmp_path / "quarantine").rglob("_reasons.json"))
        assert "prediction" in reasons and "model_version" in reasons
    assert not any((tmp_path / "out").rglob("*.parquet"))
