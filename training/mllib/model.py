"""Log a fitted MLlib PipelineModel with signature, input example and explicit requirements."""

from __future__ import annotations

import warnings
from importlib.metadata import version

import mlflow
from mlflow.models import ModelSignature, infer_signature
from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from common import spark_compat

_INPUT_EXAMPLE_ROWS = 5
_SIGNATURE_SAMPLE_ROWS = 200
# Named explicitly: without them MLflow infers requirements by loading the model in a subprocess, which starts a
# second JVM (about 40 s here).
_REQUIREMENTS = ("mlflow", "pyspark", "pandas", "numpy", "pyarrow")


_XGBOOST = "xgboost-cpu"  # the distribution that provides the `xgboost` module here (see pyproject.toml)


def pinned_spark_requirements(model: PipelineModel | None = None) -> list[str]:
    """The packages a loaded model needs; an xgboost.spark stage adds XGBoost."""
    packages = list(_REQUIREMENTS)
    if model is not None and any(type(stage).__module__.startswith("xgboost") for stage in model.stages):
        packages.append(_XGBOOST)
    return [f"{package}=={version(package)}" for package in packages]


def log_spark_model(
    model: PipelineModel,
    features: DataFrame,
    prediction_column: str,
    prediction_type: T.DataType,
    registered_model_name: str | None = None,
):
    """`features` holds exactly the model's input columns. A pipeline with this project's own stages (the title
    stage) loads where the project is installed: its classes are imported by name when the pipeline is read."""
    sample = features.limit(_SIGNATURE_SAMPLE_ROWS).toPandas()
    example = sample.head(_INPUT_EXAMPLE_ROWS)
    # The signature's output type is what scorers return: the label's own type for a classifier of numeric labels
    # (MLlib predicts them as doubles).
    predicted = (
        model.transform(features.limit(_INPUT_EXAMPLE_ROWS))
        .select(F.col(prediction_column).cast(prediction_type).alias(prediction_column))
        .toPandas()
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*integer column.*")  # about inputs; predictions are never null
        outputs = infer_signature(predicted[prediction_column]).inputs
    signature = ModelSignature(inputs=infer_signature(sample).inputs, outputs=outputs)
    with spark_compat.spark_model_files(features.sparkSession):
        return mlflow.spark.log_model(
            model,
            artifact_path="model",
            signature=signature,
            input_example=example,
            pip_requirements=pinned_spark_requirements(model),
            registered_model_name=registered_model_name,
        )
