"""Jobs that follow the registry meet new versions for as long as they run: what they cache stays bounded."""

from common.bounded_cache import MODEL_CACHE_SIZE
from scoring.batch import model_shipping
from scoring.batch.dataframe import score_dataframe
from tests.helpers import scoring_frame
from training.sklearn.train_sklearn import TrainSklearnParams
from training.sklearn.train_sklearn import run as train


def test_following_more_versions_than_the_bound_keeps_only_the_latest_downloads(spark, settings, client):
    df = spark.createDataFrame(scoring_frame().drop(columns="target").head(50))
    params = TrainSklearnParams(estimator="logistic_regression", model_name="cancer")
    shipped = []
    for version in range(1, MODEL_CACHE_SIZE + 3):
        train(settings, params)
        before = set(model_shipping._SHIPPED._entries)
        scored = score_dataframe(spark, df, f"models:/cancer/{version}")
        assert scored.frame.count() == 50 and scored.model.model_version == str(version)
        (new,) = set(model_shipping._SHIPPED._entries) - before  # this version's download
        shipped.append(model_shipping._SHIPPED._entries[new][1])

    assert len(model_shipping._SHIPPED) == MODEL_CACHE_SIZE
    # The versions dropped from the cache left no download behind; the ones still in use kept theirs.
    assert [path.exists() for path in shipped] == [False] * 2 + [True] * MODEL_CACHE_SIZE
