"""Entry point `export_onnx`: export a registered MLlib model version to ONNX and check it against Spark.

    python -m training.mllib_onnx.export_onnx --model-uri models:/titanic/3

Versions trained by train_mllib / tune_hyperopt are exported when they are registered; this is for versions that
already exist (or a new tolerance). The graph, its feed description and the parity report go to the version's
training run under `onnx/`; the version's `onnx` tag says passed, failed or unsupported.
"""

from __future__ import annotations

from dataclasses import dataclass

import mlflow
from pyspark.sql import SparkSession

from common.cli import run_cli
from common.errors import UserInputError
from common.job import EAGER_SPARK, EntryPoint
from common.model_uri import resolve_model_uri
from common.params import param
from common.settings import Settings
from training.mllib_onnx.parity import DEFAULT_TOLERANCE
from training.mllib_onnx.publish import SPARK_FLAVOR, OnnxExport, export_version


@dataclass(frozen=True)
class ExportOnnxParams:
    model_uri: str = param(help="models:/<name>/<version|stage|latest> or models:/<name>@<alias>")
    tolerance: float = param(DEFAULT_TOLERANCE, help="largest probability difference (regression: relative) allowed")


def run(spark: SparkSession, settings: Settings, params: ExportOnnxParams) -> OnnxExport:
    client = mlflow.MlflowClient()
    resolved = resolve_model_uri(client, params.model_uri)
    if resolved.model_version is None:
        raise UserInputError(
            f"{params.model_uri!r} is not a registered model version; export_onnx tags the version it exports, "
            "so use models:/<name>/<version|stage|latest> or models:/<name>@<alias>"
        )
    if not params.tolerance > 0:
        raise UserInputError(f"tolerance must be above 0, got {params.tolerance}")
    flavors = mlflow.models.get_model_info(resolved.load_uri).flavors
    if SPARK_FLAVOR not in flavors:
        raise UserInputError(
            f"model {resolved.label} is not a Spark MLlib model (flavors: {', '.join(sorted(flavors))}); "
            "only MLlib pipelines are exported to ONNX"
        )
    return export_version(spark, resolved.model_name, resolved.model_version, params.tolerance, client=client)


ENTRY_POINT = EntryPoint(ExportOnnxParams, run, spark=EAGER_SPARK)
main = ENTRY_POINT.main

if __name__ == "__main__":
    run_cli(main)
