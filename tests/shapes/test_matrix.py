"""The data shapes matrix: every shape through train_sklearn and train_mllib, a representative subset through
train_per_group and the tuning jobs' refit, each then registered -> promoted to Production through the gate ->
scored by score_batch -> scored by score_stream (available_now) -> answered by the REST server (MLlib pipelines
from their ONNX export, which must pass its parity check on every shape).

A shape the product cannot support must be refused at training with a UserInputError before any run or model version
exists; a shape that trains must go through the whole chain."""

from __future__ import annotations

import json

import mlflow
import pandas as pd
import pytest

from common.errors import UserInputError
from registry.promote import PromoteParams
from registry.promote import run as promote
from registry.stages import promote as move_to_stage
from scoring.batch.score_batch import ScoreBatchParams
from scoring.batch.score_batch import run as score_batch
from scoring.serving.app import build_app
from scoring.serving.model_holder import ModelHolder
from scoring.stream.score_stream import ScoreStreamParams
from scoring.stream.score_stream import run as score_stream
from tests.asgi import post_json
from tests.registry.conftest import state
from tests.shapes import chain
from tests.shapes.shapes import BY_ID, SHAPES, SITE, ddl

PER_GROUP_SHAPES = ["no_strings_binary01", "one_string_regression", "odd_names", "csv_quoted_commas", "time_columns"]
# The refit is train_sklearn's fit-and-log (its shapes are all above): strings, three classes, a rare class.
TUNING_SHAPES = ["one_string_regression", "several_strings_multiclass", "tiny_rare_class"]

CHAINS = (
    [(trainer, shape) for trainer in ("sklearn", "mllib") for shape in SHAPES]
    + [("per_group", BY_ID[s]) for s in PER_GROUP_SHAPES]
    + [(trainer, BY_ID[s]) for trainer in ("hyperopt", "joblib") for s in TUNING_SHAPES]
)
# A shape a trainer must refuse has nothing to promote or score.
SCORED_CHAINS = [(trainer, shape) for trainer, shape in CHAINS if trainer not in shape.must_refuse]


def _params(chains):
    return pytest.mark.parametrize(
        ("trainer", "shape"), chains, ids=[f"{trainer}-{shape.id}" for trainer, shape in chains]
    )


def _rows_trained(client, trainer: str, run_id: str) -> int:
    run = client.get_run(run_id)
    if trainer == "mllib":
        return int(run.data.metrics["n_rows_train"] + run.data.metrics["n_rows_test"])
    if trainer == "per_group":
        return int(run.data.metrics["n_rows"] - run.data.metrics["n_rows_missing_label"])
    return int(run.data.params["n_rows_train"]) + int(run.data.params["n_rows_test"])


@_params(CHAINS)
def test_training_registers_version_1_or_refuses_before_any_run(trained_models, trainer, shape):
    trained = trained_models.get(trainer, shape)
    client = trained.store.client()
    pattern, required = shape.refusal_for(trainer)
    if trained.error is not None:
        if not (isinstance(trained.error, UserInputError) and pattern and chain.matches(pattern, trained.error)):
            left = [f"{r.info.run_name} {r.info.status}" for r in trained.store.runs()]
            accepted = f" or a UserInputError matching {pattern!r} before any run" if pattern else ""
            raise AssertionError(
                f"{trainer} on {shape.id}: expected a registered version 1{accepted}; got "
                f"{type(trained.error).__name__}: {str(trained.error).strip().splitlines()[0][:300]} "
                f"(runs left in the store: {left or 'none'})"
            ) from trained.error
        # Refused: before any run or model version exists.
        assert trained.store.runs() == []
        assert client.search_registered_models() == []
        return
    assert not required, f"{trainer} trained shape {shape.id}; expected the refusal {pattern!r}"

    result = trained.result
    assert client.get_run(result.run_id).info.status == "FINISHED"
    (version,) = client.search_model_versions(f"name='{trained.model_name}'")
    assert (str(version.version), version.current_stage, version.run_id) == ("1", "None", result.run_id)
    assert result.task == shape.task
    left_out = shape.left_out_by.get(trainer, ())
    expected_inputs = ([SITE] if trainer == "per_group" else []) + [c for c in shape.features() if c not in left_out]
    assert trained.features == expected_inputs  # the registered version's signature
    labeled = int(trained.frame[shape.label].notna().sum())
    assert _rows_trained(client, trainer, result.run_id) == labeled


@_params(SCORED_CHAINS)
def test_promotion_to_production_passes_the_gate(spark, trained_models, own_store, trainer, shape):
    trained = trained_models.get(trainer, shape)
    trained.require_model()
    settings = own_store(trained)
    client = mlflow.MlflowClient()

    promoted = promote(spark, settings, PromoteParams(model_name=trained.model_name, stage="Production", version="1"))

    assert (promoted.version, promoted.stage) == ("1", "Production")
    assert state(client, trained.model_name) == ({"1": "Production"}, {"production": "1"})
    assert client.get_model_version(trained.model_name, "1").tags["gate"] == "passed"


def _in_production(trained, own_store):
    trained.require_model()
    settings = own_store(trained)
    move_to_stage(mlflow.MlflowClient(), trained.model_name, "1", "Production")  # the gate is the test above
    return settings


@_params(SCORED_CHAINS)
def test_score_batch_keeps_every_row_and_id_and_predicts_as_the_model_does(
    spark, trained_models, own_store, tmp_path, trainer, shape
):
    trained = trained_models.get(trainer, shape)
    settings = _in_production(trained, own_store)
    out = tmp_path / "scored"
    n = len(trained.frame)

    result = score_batch(
        spark,
        settings,
        ScoreBatchParams(
            model_uri=f"models:/{trained.model_name}/production", input=str(trained.data), output=str(out)
        ),
    )

    assert (result.rows_in, result.rows_out) == (n, n)
    scored = pd.read_parquet(out)
    assert len(scored) == n
    assert list(scored.columns) == chain.expected_columns(trained.passthrough, chain.gives_probability(trained))
    assert set(scored["model_name"]) == {trained.model_name} and set(scored["model_version"]) == {"1"}
    chain.assert_matches_model(scored, trained_models.own_predictions(trained), shape.key)
    chain.assert_passthrough_kept(scored, chain.read_table(trained.data, shape.fmt), trained.passthrough, shape.key)


@_params(SCORED_CHAINS)
def test_score_stream_keeps_every_row_and_id_and_predicts_as_the_model_does(
    spark, trained_models, own_store, tmp_path, trainer, shape
):
    trained = trained_models.get(trainer, shape)
    settings = _in_production(trained, own_store)
    source = chain.read_table(trained.data, shape.fmt)
    n = len(source)
    landing = tmp_path / "in"
    chain.land(source.iloc[: n // 2], landing, f"a.{shape.fmt}", shape.fmt)
    chain.land(source.iloc[n // 2 :], landing, f"b.{shape.fmt}", shape.fmt)
    files = 2
    if shape.fmt == "csv":  # a header-only file: a valid CSV without rows, scored as nothing, not quarantined
        chain.land(source.iloc[:0], landing, f"c-header-only.{shape.fmt}", shape.fmt)
        files = 3
    config = ScoreStreamParams(
        model_uri=f"models:/{trained.model_name}/production",
        input=str(landing),
        output=str(tmp_path / "out"),
        checkpoint=str(tmp_path / "checkpoint"),
        quarantine=str(tmp_path / "quarantine"),
        format=shape.fmt,
        max_files_per_trigger=2,
        ids=ddl(source, [c for c in trained.passthrough if c not in trained.features]),
    )

    batches = score_stream(spark, settings, config).scored_batches

    assert sorted(batches) == list(range((files + 1) // 2))
    chain.assert_nothing_quarantined(tmp_path / "quarantine")
    scored = pd.read_parquet(tmp_path / "out")
    assert len(scored) == n
    expected = chain.expected_columns(trained.passthrough, chain.gives_probability(trained))
    assert sorted(scored.columns) == sorted([*expected, "batch_id"])
    assert set(scored["model_version"]) == {"1"}
    chain.assert_matches_model(scored, trained_models.own_predictions(trained), shape.key)
    chain.assert_passthrough_kept(scored, source, trained.passthrough, shape.key)


@_params(SCORED_CHAINS)
def test_rest_server_answers_every_row_as_the_model_does(trained_models, own_store, trainer, shape):
    trained = trained_models.get(trainer, shape)
    trained.require_model()
    own_store(trained)
    holder = ModelHolder.load(f"models:/{trained.model_name}/1", reload_seconds=60)
    source = chain.read_table(trained.data, shape.fmt)
    probability = chain.gives_probability(trained)
    split = json.loads(source.to_json(orient="split"))

    reply = post_json(build_app(holder, 64 * 2**20), {"dataframe_split": split, "params": {"probability": probability}})

    assert reply.status == 200, reply.body[:1000]
    predictions = reply.json()["predictions"]
    out = pd.DataFrame({shape.key: source[shape.key]})
    if probability:
        out["prediction"] = [p["prediction"] for p in predictions]
        out["probability"] = [p["probability"] for p in predictions]
    else:
        out["prediction"] = predictions
    chain.assert_matches_model(out, trained_models.own_predictions(trained), shape.key)
    assert holder.current.kind == ("onnx" if trainer == "mllib" else "python"), holder.current.how
