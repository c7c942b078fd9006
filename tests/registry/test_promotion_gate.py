"""The gate, rollback and history against a real store, real models and Spark scoring."""

import json

import pandas as pd
import pytest

from common.errors import UserInputError
from registry import history, rollback
from registry.lock import lock_name
from registry.promote import PromoteParams
from registry.promote import run as promote
from registry.rollback import RollbackParams
from scoring.batch.score_batch import ScoreBatchParams
from scoring.batch.score_batch import run as score_batch
from tests.helpers import scoring_frame
from tests.registry.conftest import state
from training.sklearn.train_sklearn import TrainSklearnParams
from training.sklearn.train_sklearn import run as train


@pytest.fixture
def champion_and_weak_challenger(spark, settings, client):
    """cancer v1: a good logistic regression, in Production through the gate; v2: a one-split forest."""
    train(settings, TrainSklearnParams(data="breast_cancer", estimator="logistic_regression", model_name="cancer"))
    promote(spark, settings, PromoteParams(model_name="cancer", stage="production", version="1"))
    train(
        settings,
        TrainSklearnParams(
            data="breast_cancer",
            estimator="random_forest",
            hyperparams={"n_estimators": 2, "max_depth": 1},
            model_name="cancer",
        ),
    )
    return client


def test_a_weaker_challenger_is_refused_with_the_metric_table_and_nothing_changes(
    spark, settings, champion_and_weak_challenger
):
    client = champion_and_weak_challenger
    before = state(client, "cancer")
    with pytest.raises(
        UserInputError,
        match=r"(?s)version 2 was not promoted.*against Production version 1 on 114 rows"
        r".*accuracy .* worse than the champion's",
    ):
        promote(spark, settings, PromoteParams(model_name="cancer", stage="production", version="2"))
    assert state(client, "cancer") == before == ({"1": "Production", "2": "None"}, {"production": "1"})
    tags = client.get_model_version("cancer", "1").tags
    assert tags["gate"] == "passed" and json.loads(tags["gate_candidate_metrics"])["accuracy"] > 0.95
    assert "Gate passed" in client.get_model_version("cancer", "1").description


def test_force_needs_a_reason_and_is_recorded_then_rollback_puts_the_champion_back(
    spark, settings, champion_and_weak_challenger
):
    client = champion_and_weak_challenger
    with pytest.raises(UserInputError, match="needs a reason"):
        promote(None, settings, PromoteParams(model_name="cancer", stage="production", version="2", force=True))
    promote(
        None,
        settings,
        PromoteParams(
            model_name="cancer", stage="production", version="2", reason="hotfix for a data change", force=True
        ),
    )
    assert state(client, "cancer") == ({"1": "Archived", "2": "Production"}, {"production": "2"})
    tags = client.get_model_version("cancer", "2").tags
    assert (tags["gate"], tags["promotion_reason"], tags["previous_production"]) == (
        "skipped (force)",
        "hotfix for a data change",
        "1",
    )

    back = rollback.run(settings, RollbackParams(model_name="cancer", reason="v2 misbehaves"))
    assert back.version == "1" and state(client, "cancer") == (
        {"1": "Production", "2": "Archived"},
        {"production": "1"},
    )
    events = history.timeline(client, "cancer")
    assert [(e.version, e.stage, e.gate) for e in events] == [
        ("1", "Production", "passed"),
        ("2", "Production", "skipped (force)"),
        ("1", "Production", "not run (rollback)"),
    ]
    assert events[2].why == "rollback from version 2: v2 misbehaves"
    assert events[0].metrics["candidate_accuracy"] > 0.95
    assert history.drift(client, "cancer") == []
    # Each promotion took the lock and ended it; none is left, and promoting leaves the model's own tags alone.
    assert lock_name("cancer") not in {m.name for m in client.search_registered_models()}
    assert client.get_registered_model("cancer").tags == {}


def test_history_flags_a_stage_and_alias_that_disagree(settings, champion_and_weak_challenger):
    client = champion_and_weak_challenger
    client.set_registered_model_alias("cancer", "production", "2")  # moved by hand, outside promote
    assert history.drift(client, "cancer") == ["stage Production holds version 1 but @production points to version 2"]


def test_a_candidate_with_other_inputs_than_the_champion_is_refused(
    spark, settings, champion_and_weak_challenger, tmp_path
):
    client = champion_and_weak_challenger
    path = tmp_path / "fewer.parquet"
    scoring_frame().drop(columns=["row_id", "worst_area"]).to_parquet(path, index=False)
    train(
        settings, TrainSklearnParams(data=str(path), estimator="logistic_regression", model_name="cancer")
    )  # version 3
    with pytest.raises(
        UserInputError, match="version 3's inputs differ from Production version 1's.*drops column\\(s\\): worst_area"
    ):
        promote(spark, settings, PromoteParams(model_name="cancer", stage="production", version="3"))
    assert state(client, "cancer")[0]["3"] == "None"


def test_evaluation_data_missing_a_feature_is_refused(spark, settings, champion_and_weak_challenger, tmp_path):
    path = tmp_path / "eval.parquet"
    scoring_frame().drop(columns=["row_id", "mean_texture"]).to_parquet(path, index=False)
    with pytest.raises(UserInputError, match="column 'mean_texture' is missing"):
        promote(spark, settings, PromoteParams(model_name="cancer", stage="production", version="2", data=str(path)))


def test_an_mllib_model_passes_the_gate_on_its_logged_test_split(spark, settings, client):
    from training.mllib.train_mllib import TrainMllibParams
    from training.mllib.train_mllib import run as train_mllib

    train_mllib(
        spark,
        settings,
        TrainMllibParams(data="titanic", label="survived", title_from="name", num_trees=10, model_name="titanic"),
    )
    promote(spark, settings, PromoteParams(model_name="titanic", stage="production", version="1"))
    tags = client.get_model_version("titanic", "1").tags
    assert tags["gate"] == "passed" and 0.7 < json.loads(tags["gate_candidate_metrics"])["accuracy"] <= 1


def test_a_stage_uri_scores_through_the_alias_when_stage_information_is_absent(spark, settings, client, tmp_path):
    """A registry without stages (MLflow is removing them): only the alias says which version is production."""
    train(settings, TrainSklearnParams(data="breast_cancer", estimator="logistic_regression", model_name="cancer"))
    client.set_registered_model_alias("cancer", "production", "1")
    assert state(client, "cancer") == ({"1": "None"}, {"production": "1"})
    path = tmp_path / "in.parquet"
    scoring_frame().to_parquet(path, index=False)
    result = score_batch(
        spark,
        settings,
        ScoreBatchParams(model_uri="models:/cancer/production", input=str(path), output=str(tmp_path / "out")),
    )
    assert (result.model.model_version, result.rows_out) == ("1", 569)
    assert set(pd.read_parquet(tmp_path / "out")["model_version"]) == {"1"}
