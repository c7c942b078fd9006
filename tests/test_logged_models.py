"""Models already logged keep loading: classes stored by import path in logged models (the title stage, the
per-group router) stay importable at their old paths, and answer as they did when they were logged."""

import json

import mlflow
import numpy as np
import pandas as pd
from pyspark.ml.functions import vector_to_array

from tests.helpers import REPO
from training.mllib.features import TitleAgeImputerModel
from training.per_group.model import PerGroupModel

LOGGED = REPO / "tests" / "data" / "models_logged_before_restructure"


def test_an_mllib_pipeline_with_the_title_stage_logged_before_loads_and_predicts_as_it_did(spark):
    passengers = pd.read_parquet(LOGGED / "passengers.parquet")
    stage_metadata = next((LOGGED / "titanic" / "sparkml" / "stages").glob("0_*/metadata/part-*")).read_text()
    assert json.loads(stage_metadata)["class"] == "training.mllib_features.TitleAgeImputerModel"  # the old path
    model = mlflow.spark.load_model(str(LOGGED / "titanic"))
    assert type(model.stages[0]) is TitleAgeImputerModel
    scored = model.transform(spark.createDataFrame(passengers)).select(
        "passenger_id", "prediction", vector_to_array("probability")[1].alias("probability")
    )
    out = scored.toPandas().sort_values("passenger_id", ignore_index=True)
    then = pd.read_parquet(LOGGED / "titanic_predictions.parquet").sort_values("passenger_id", ignore_index=True)
    assert len(out) == len(then) == 200
    np.testing.assert_array_equal(out["prediction"], then["prediction"])
    np.testing.assert_allclose(out["probability"], then["probability"], rtol=1e-12)


def test_a_per_group_model_logged_before_loads_and_predicts_as_it_did():
    readings = pd.read_parquet(LOGGED / "readings.parquet")
    model = mlflow.pyfunc.load_model(str(LOGGED / "fleet"))
    assert type(model.unwrap_python_model()) is PerGroupModel  # pickled as training.per_group_model.PerGroupModel
    then = pd.read_parquet(LOGGED / "fleet_predictions.parquet")["prediction"].to_numpy()
    np.testing.assert_array_equal(model.predict(readings), then)
