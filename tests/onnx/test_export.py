"""The export as jobs run it: train_mllib exports a version right after registering it; export_onnx exports an
existing version again; a failing export tags the version and raises nothing; a model that is not MLlib is a user
error in one line."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest

from common.errors import UserInputError
from common.onnx_model import ONNX_TAG, load_onnx_pipeline, read_parity
from tests.training.test_train_sklearn import _artifact_paths
from training.mllib.train_mllib import TrainMllibParams
from training.mllib.train_mllib import run as train_mllib
from training.mllib_onnx import export_onnx
from training.mllib_onnx.export_onnx import ExportOnnxParams


@pytest.fixture
def titanic_version(spark, settings, client):
    """A small Titanic forest with the title stage, registered as 'titanic' version 1 (exported on registration)."""
    params = TrainMllibParams(
        data="titanic", label="survived", title_from="name", num_trees=3, max_depth=3, model_name="titanic"
    )
    return train_mllib(spark, settings, params)


def test_training_exports_the_registered_version_and_export_onnx_redoes_it(
    spark, settings, client, titanic_version, monkeypatch
):
    run_id = titanic_version.run_id
    assert client.get_model_version("titanic", "1").tags[ONNX_TAG] == "passed"
    assert _artifact_paths(client, run_id, "onnx") == ["onnx/feed.json", "onnx/model.onnx", "onnx/parity.json"]
    metrics = client.get_run(run_id).data.metrics
    held_out = metrics["n_rows_test"]
    assert metrics["onnx_parity_rows"] > held_out and metrics["onnx_parity_max_abs_diff"] <= 1e-6
    folder = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="onnx")
    parity = read_parity(folder)
    assert parity["passed"] and parity["held_out_rows"] == held_out
    assert parity["rows_compared"] == held_out + parity["edge_rows"] == metrics["onnx_parity_rows"]
    feed = json.loads(Path(folder, "feed.json").read_text())
    assert feed["output_type"] == "long" and feed["classes"] == [0, 1] and feed["pre_step"]["kind"] == "title_age"
    pipeline = load_onnx_pipeline(folder)
    assert pipeline.input_columns == ("name", "class", "age", "sex")

    # Again, from the files alone (the logged model and the run's data/test.parquet), with a tighter tolerance.
    again = export_onnx.run(spark, settings, ExportOnnxParams(model_uri="models:/titanic/latest", tolerance=1e-9))
    assert again.passed and again.version == "1" and again.parity["rows_compared"] == parity["rows_compared"]
    assert "titanic version 1: onnx passed" in again.summary()

    # An export that breaks says so on the version, and raises nothing.
    def broken(*args, **kwargs):
        raise RuntimeError("onnxruntime exploded")

    monkeypatch.setattr("training.mllib_onnx.publish.check_parity", broken)
    outcome = export_onnx.run(spark, settings, ExportOnnxParams(model_uri="models:/titanic/1"))
    assert outcome.tag == "failed: RuntimeError: onnxruntime exploded" and not outcome.passed
    assert client.get_model_version("titanic", "1").tags[ONNX_TAG] == outcome.tag


def test_a_model_that_is_not_mllib_is_refused_in_one_line(spark, settings, three_versions):
    with pytest.raises(UserInputError, match=r"^model m v3 is not a Spark MLlib model \(flavors: .*sklearn"):
        export_onnx.run(spark, settings, ExportOnnxParams(model_uri="models:/m/latest"))


def test_a_run_uri_is_refused_it_has_no_version_to_tag(spark, settings):
    with pytest.raises(UserInputError, match="not a registered model version"):
        export_onnx.run(spark, settings, ExportOnnxParams(model_uri="runs:/abc/model"))
