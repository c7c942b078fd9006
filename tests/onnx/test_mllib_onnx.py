"""ONNX export of the pipelines training.mllib.pipeline builds: parity with Spark's own transform on held-out rows
plus edge rows (unseen categories, nulls, NaN, values at the trees' thresholds), on varied shapes; stages without
an exact converter refused by name. Pipelines are fitted directly (small trees) where MLflow is not the point."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from pyspark.ml import Pipeline
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.feature import SQLTransformer, StandardScaler, VectorAssembler
from pyspark.sql import types as T

from common.onnx_model import load_onnx_pipeline
from training.mllib.pipeline import MllibSpec
from training.mllib.steps import prepare_mllib
from training.mllib_onnx.convert import ColumnTypes, convert_pipeline
from training.mllib_onnx.parity import DEFAULT_TOLERANCE, UNSEEN_CATEGORY, check_parity
from training.mllib_onnx.saved_stages import UnsupportedPipeline


def _export(spark, tmp_path, data: str, spec: MllibSpec):
    """Fit as training does, save, convert from the saved files, check parity; asserts it passed exactly."""
    job = prepare_mllib(spark, data, spec, test_fraction=0.2)
    if spec.estimator in ("logistic_regression", "linear_regression"):
        job.estimator_stage.setMaxIter(10)  # parity does not need convergence; each iteration is a Spark job
    model = job.pipeline.fit(job.train)
    model.write().save(str(tmp_path / "sparkml"))
    features = job.labeled.select(*job.plan.raw_features)
    output = "string" if job.label_classes is not None else job.labeled.schema[spec.label].dataType.typeName()
    types = ColumnTypes.of_spark_schema(features.schema, output)
    converted = convert_pipeline(tmp_path / "sparkml", types)
    pipeline = load_onnx_pipeline(converted.save(tmp_path / "onnx"))
    report = check_parity(model, pipeline, converted, job.test, types)
    held_out = job.test.count()
    assert report.held_out_rows == held_out > 0 and report.edge_rows > 0
    assert report.rows_compared == held_out + report.edge_rows
    assert report.mismatched_labels == 0, report.examples
    assert report.compared_diff <= DEFAULT_TOLERANCE and report.passed, report.to_dict()
    return job, model, converted, pipeline, report


def test_penguins_multiclass_random_forest_with_string_label_gaps_and_categorical_splits(spark, tmp_path):
    spec = MllibSpec("species", "auto", "random_forest", num_trees=4, max_depth=4)
    _, _, converted, pipeline, _ = _export(spark, tmp_path, "penguins", spec)
    assert pipeline.classes == ["Adelie", "Chinstrap", "Gentoo"]
    (trees,) = [node for node in converted.model.graph.node if node.op_type == "TreeEnsemble"]
    modes = next(a for a in trees.attribute if a.name == "nodes_modes").t
    assert 6 in np.frombuffer(modes.raw_data, dtype=np.uint8)  # categorical splits stay set memberships
    assert converted.edge_values  # parity scored rows exactly at the continuous thresholds
    prediction, probability = pipeline.predict(pd.DataFrame([dict.fromkeys(pipeline.input_columns)]))
    assert prediction.dtype == object and prediction[0] in pipeline.classes
    assert probability.shape == (1, 3) and math.isclose(probability.sum(), 1.0)


def test_logistic_regression_binary_with_title_through_one_hot(spark, tmp_path):
    spec = MllibSpec("survived", "auto", "logistic_regression", title_from="name")
    _, _, converted, pipeline, report = _export(spark, tmp_path, "titanic", spec)
    assert converted.feed["pre_step"]["kind"] == "title_age" and pipeline.classes == [0, 1]
    assert pipeline.input_columns == ("name", "class", "age", "sex")
    assert any(node.op_type == "Equal" for node in converted.model.graph.node)  # the one-hot encoding
    assert report.max_abs_diff < 1e-12


def test_logistic_regression_multinomial(spark, tmp_path):
    _, _, _, pipeline, _ = _export(spark, tmp_path, "penguins", MllibSpec("species", "auto", "logistic_regression"))
    assert pipeline.classes == ["Adelie", "Chinstrap", "Gentoo"]


@pytest.mark.parametrize("estimator", ["linear_regression", "random_forest"])
def test_regressors_on_body_mass(spark, tmp_path, estimator):
    spec = MllibSpec("body_mass_g", "regression", estimator, num_trees=4, max_depth=3)
    _, _, converted, pipeline, report = _export(spark, tmp_path, "penguins", spec)
    assert pipeline.classes is None and converted.feed["output_type"] == "double"
    prediction, probability = pipeline.predict(pd.DataFrame([dict.fromkeys(pipeline.input_columns)]))
    assert probability is None and prediction.dtype == np.float64 and 2000 < prediction[0] < 7000
    assert report.diff_basis.startswith("max |prediction difference| / max(1")


@pytest.fixture
def devices_table(tmp_path) -> str:
    """Booleans, strings and integers with gaps; the label depends on all of them."""
    rng = np.random.default_rng(7)
    n = 240
    frame = pd.DataFrame(
        {
            "active": pd.array(rng.random(n) < 0.5, dtype="boolean"),
            "kind": rng.choice(["alpha", "beta", "gamma", "delta"], n).astype(object),
            "load": rng.normal(50, 15, n).round(1),
            "errors": rng.integers(0, 9, n),
        }
    )
    frame["failed"] = ((frame["load"] > 55) & frame["active"].astype(bool) | (frame["kind"] == "gamma")).astype(int)
    frame.loc[::11, "active"] = pd.NA
    frame.loc[::13, "kind"] = None
    frame.loc[::7, "load"] = np.nan
    frame["errors"] = frame["errors"].astype("Int64")
    frame.loc[::17, "errors"] = pd.NA
    path = tmp_path / "devices.parquet"
    frame.to_parquet(path)
    return str(path)


def test_gbt_on_a_table_with_a_boolean_column_unseen_categories_and_nulls_at_scoring_time(
    spark, tmp_path, devices_table
):
    spec = MllibSpec("failed", "classification", "gbt", num_trees=4, max_depth=3)
    job, model, converted, pipeline, _ = _export(spark, tmp_path, devices_table, spec)
    assert "SQLTransformer" in " ".join(converted.stages)
    assert {i["name"]: i.get("spark_type") for i in converted.feed["graph_inputs"]}["active"] == "boolean"
    # Scoring-time input as a server gets it: records with None, NaN, an unseen category, booleans as bools.
    records = [
        {"active": True, "kind": "epsilon", "load": 80.0, "errors": 3},
        {"active": None, "kind": None, "load": None, "errors": None},
        {"active": False, "kind": "gamma", "load": math.nan, "errors": 8},
        {"active": True, "kind": UNSEEN_CATEGORY, "load": 55.0, "errors": 0},
    ]
    frame = pd.DataFrame.from_records(records)
    schema = job.labeled.select(*pipeline.input_columns).schema
    spark_rows = spark.createDataFrame([tuple(r.values()) for r in records], schema=schema)
    expected = model.transform(spark_rows).select("prediction", "probability").toPandas()
    prediction, probability = pipeline.predict(frame)
    assert prediction.dtype == np.int64  # the label's own type, as batch scoring casts it
    assert prediction.tolist() == expected["prediction"].astype(int).tolist()
    np.testing.assert_allclose(probability, np.vstack(expected["probability"].map(lambda v: v.toArray())), atol=1e-9)


def _fit_and_save(spark, tmp_path, stages):
    frame = spark.createDataFrame([(float(i), float(i % 3), float(i % 2)) for i in range(30)], ["x", "z", "label"])
    Pipeline(stages=stages).fit(frame).write().save(str(tmp_path / "sparkml"))
    return ColumnTypes({"x": "double", "z": "double"}, "double")


def test_another_sql_statement_is_refused_by_stage_uid(spark, tmp_path):
    sql = SQLTransformer(statement="SELECT *, x * 2 AS x_doubled FROM __THIS__")
    assembler = VectorAssembler(inputCols=["x_doubled", "z"], outputCol="features", handleInvalid="keep")
    types = _fit_and_save(spark, tmp_path, [sql, assembler, LogisticRegression(maxIter=5)])
    with pytest.raises(UnsupportedPipeline, match=rf"SQLTransformer \({sql.uid}\).*x \* 2"):
        convert_pipeline(tmp_path / "sparkml", types)


def test_a_stage_without_a_converter_is_refused_by_class_and_uid(spark, tmp_path):
    assembler = VectorAssembler(inputCols=["x", "z"], outputCol="raw", handleInvalid="keep")
    scaler = StandardScaler(inputCol="raw", outputCol="features")
    types = _fit_and_save(spark, tmp_path, [assembler, scaler, LogisticRegression(maxIter=5)])
    with pytest.raises(UnsupportedPipeline, match=rf"StandardScalerModel \({scaler.uid}\): this stage has no ONNX"):
        convert_pipeline(tmp_path / "sparkml", types)


def test_an_unknown_column_type_is_refused_not_guessed(spark, tmp_path):
    assembler = VectorAssembler(inputCols=["x", "z"], outputCol="features", handleInvalid="keep")
    _fit_and_save(spark, tmp_path, [assembler, LogisticRegression(maxIter=5)])
    with pytest.raises(UnsupportedPipeline, match=rf"VectorAssembler \({assembler.uid}\).*'z'"):
        convert_pipeline(tmp_path / "sparkml", ColumnTypes({"x": "double", "z": "timestamp"}, "double"))


def test_spark_schema_type_names_are_the_signature_names():
    schema = T.StructType([T.StructField(n, t) for n, t in [("a", T.LongType()), ("b", T.BooleanType())]])
    assert ColumnTypes.of_spark_schema(schema, "long").inputs == {"a": "long", "b": "boolean"}


def test_xgboost_multiclass_with_string_label_matches_spark_row_by_row(spark, tmp_path):
    """The booster's trees (float32 splits, per-class trees, base margins, softmax) as one TreeEnsemble."""
    spec = MllibSpec("species", "auto", "xgboost", num_trees=10, max_depth=3)
    job, model, converted, pipeline, report = _export(spark, tmp_path, "penguins", spec)
    assert pipeline.classes == ["Adelie", "Chinstrap", "Gentoo"] and "SparkXGBClassifierModel" in converted.stages[-2]
    assert converted.edge_values  # rows exactly at the booster's thresholds were compared
    # What the REST server answers (ONNX, no JVM) equals Spark's transform, row by row, on the held-out rows.
    held = job.test.select(*pipeline.input_columns).orderBy(*pipeline.input_columns)
    expected = model.transform(held).select("prediction", "probability").toPandas()
    prediction, probability = pipeline.predict(held.toPandas())
    assert prediction.tolist() == expected["prediction"].tolist()
    np.testing.assert_allclose(probability, np.vstack(expected["probability"].map(lambda v: v.toArray())), atol=1e-6)


def test_xgboost_binary_on_a_table_with_booleans_and_nulls(spark, tmp_path, devices_table):
    spec = MllibSpec("failed", "classification", "xgboost", num_trees=8, max_depth=3)
    _, _, converted, pipeline, report = _export(spark, tmp_path, devices_table, spec)
    assert pipeline.classes == [0, 1] and report.edge_rows > 0


def test_xgboost_regressor_on_body_mass(spark, tmp_path):
    spec = MllibSpec("body_mass_g", "regression", "xgboost", num_trees=8, max_depth=3)
    _, _, converted, pipeline, report = _export(spark, tmp_path, "penguins", spec)
    assert pipeline.classes is None and "SparkXGBRegressorModel" in converted.stages[-1]
    assert report.diff_basis.startswith("max |prediction difference| / max(1")
