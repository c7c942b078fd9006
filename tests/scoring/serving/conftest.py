"""The serving tests' registry: a SQLite store with a few small versions, built once per session, and the real ASGI
app over one of its URIs (tests/asgi.py calls it in-process)."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from common.datasets import load_table
from scoring.serving.app import build_app
from scoring.serving.model_holder import ModelHolder
from tests.shapes.conftest import Store, using_store
from training.sklearn.model import log_sklearn_model

CANCER = load_table("breast_cancer").frame
FEATURES = CANCER.drop(columns=["target"])


class Exploding(mlflow.pyfunc.PythonModel):
    """Fails on negative x: a model error the server must turn into a 500 and survive."""

    def predict(self, context, model_input, params=None):
        if (model_input["x"] < 0).any():
            raise ArithmeticError("negative x: cannot take its logarithm\nsecond line that must not be shown")
        return np.log1p(model_input["x"].to_numpy())


class AlwaysFails(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        raise RuntimeError("this version is broken")


def log_pyfunc(model, name: str) -> None:
    example = pd.DataFrame({"x": [1.0, 2.0]})
    signature = mlflow.models.infer_signature(example, np.array([0.1, 0.2]))
    with mlflow.start_run():
        mlflow.pyfunc.log_model(
            name="model", python_model=model, signature=signature, registered_model_name=name, input_example=example
        )


@pytest.fixture(scope="session")
def store(template_db, tmp_path_factory):
    """cancer v1, v2 (two logistic regressions), exploding v1, diabetes v1 (a regressor), gone v1 (its files
    deleted)."""
    import shutil

    store = Store(tmp_path_factory.mktemp("serving"))
    shutil.copy(template_db, store.db)
    with using_store(store):
        mlflow.set_experiment("serving")  # artifacts under this store's folder
        y = CANCER["target"]
        for c in (1.0, 0.01):
            with mlflow.start_run():
                log_sklearn_model(LogisticRegression(C=c, max_iter=5000).fit(FEATURES, y), FEATURES, "cancer")
        log_pyfunc(Exploding(), "exploding")
        diabetes = load_table("diabetes").frame
        X = diabetes.drop(columns=["target"])
        with mlflow.start_run():
            log_sklearn_model(LinearRegression().fit(X, diabetes["target"]), X, "diabetes")
        with mlflow.start_run():
            info = log_sklearn_model(LinearRegression().fit(X, diabetes["target"]), X, "gone")
        shutil.rmtree(mlflow.get_logged_model(info.model_id).artifact_location.removeprefix("file://"))
    return store


@pytest.fixture
def app_for(store):
    def build(uri: str, max_body_bytes: int = 10 * 2**20, inference_log=None):
        with using_store(store):
            return build_app(ModelHolder.load(uri, reload_seconds=60), max_body_bytes, inference_log)

    return build


def split_body(frame: pd.DataFrame) -> dict:
    return {"dataframe_split": json.loads(frame.to_json(orient="split"))}
