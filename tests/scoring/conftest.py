"""Fixtures shared by the scoring tests."""

import mlflow
import pytest
from sklearn.ensemble import RandomForestClassifier

from tests.helpers import scoring_frame
from training.sklearn.model import log_sklearn_model


@pytest.fixture
def wine_forest(settings):
    """A bare scikit-learn forest (no pipeline) on the wine data: three classes, so one probability per class."""
    frame = scoring_frame("wine")
    features = frame.drop(columns=["row_id", "target"]).astype("float64")
    model = RandomForestClassifier(n_estimators=20, max_depth=4, random_state=0).fit(features, frame["target"])
    with mlflow.start_run():
        log_sklearn_model(model, features, registered_model_name="wine_forest")
    return model, frame.assign(**features)
