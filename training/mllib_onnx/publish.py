"""Export a registered MLlib model version to ONNX: convert, check parity with Spark, log `onnx/` to the version's
training run and say on the version whether the export can be trusted (common.onnx_model.ONNX_TAG).

An export that fails never fails the job that asked for it (training goes on with the Spark model): the version is
tagged "unsupported: <why>" (a stage with no exact converter) or "failed: <why>" (parity, or an error), and a
warning is logged.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame, SparkSession

from common.onnx_model import ONNX_ARTIFACT_DIR, ONNX_PASSED, ONNX_TAG, PARITY_FILE, load_onnx_pipeline
from training.held_out import TEST_SPLIT, download_test_split
from training.mllib_onnx.convert import ColumnTypes, convert_pipeline
from training.mllib_onnx.parity import DEFAULT_TOLERANCE, check_parity
from training.mllib_onnx.saved_stages import UnsupportedPipeline

_logger = logging.getLogger(__name__)
SPARK_FLAVOR = "spark"


@dataclass(frozen=True)
class OnnxExport:
    model_name: str
    version: str
    run_id: str
    tag: str  # the ONNX_TAG value set on the version
    parity: dict | None  # parity.json, when parity was checked

    @property
    def passed(self) -> bool:
        return self.tag == ONNX_PASSED

    def summary(self) -> str:
        figures = ""
        if self.parity:
            p = self.parity
            figures = (
                f" ({p['rows_compared']} rows, {p['mismatched_labels']} mismatched, "
                f"max abs diff {p['max_abs_diff']:.3g}, tolerance {p['tolerance']:g})"
            )
        return f"{self.model_name} version {self.version}: onnx {self.tag}{figures}"


def export_version(
    spark: SparkSession,
    model_name: str,
    version: str,
    tolerance: float = DEFAULT_TOLERANCE,
    model: PipelineModel | None = None,
    held_out: DataFrame | None = None,
    client: MlflowClient | None = None,
) -> OnnxExport:
    """`model`: the fitted pipeline when it is in memory (else loaded from the version); `held_out`: the held-out
    rows (else the run's data/test.parquet). Never raises for a conversion or parity failure: see the tag."""
    client = client or MlflowClient()
    model_version = client.get_model_version(model_name, version)
    run_id = model_version.run_id
    with tempfile.TemporaryDirectory(prefix="onnx_export_") as tmp:
        try:
            local = Path(
                mlflow.artifacts.download_artifacts(
                    artifact_uri=f"models:/{model_name}/{version}", dst_path=str(Path(tmp) / "model")
                )
            )
            types = ColumnTypes.of_logged_model(local)
            converted = convert_pipeline(local / "sparkml", types)
            out = converted.save(Path(tmp) / ONNX_ARTIFACT_DIR)
            pipeline = load_onnx_pipeline(out)
            if model is None:
                model = PipelineModel.load(str(local / "sparkml"))
            if held_out is None:
                held_out = _logged_test_split(spark, client, run_id, Path(tmp) / "data")
            report = check_parity(model, pipeline, converted, held_out, types, tolerance)
        except UnsupportedPipeline as exc:
            return _tag(client, model_name, version, run_id, f"unsupported: {exc}", None)
        except Exception as exc:  # an export must not fail the job that trains the model
            _logger.warning("ONNX export of %s version %s failed", model_name, version, exc_info=True)
            return _tag(client, model_name, version, run_id, f"failed: {type(exc).__name__}: {exc}", None)
        parity = report.to_dict()
        (out / PARITY_FILE).write_text(json.dumps(parity, indent=2))
        client.log_artifacts(run_id, str(out), ONNX_ARTIFACT_DIR)
        client.log_metric(run_id, "onnx_parity_max_abs_diff", report.max_abs_diff)
        client.log_metric(run_id, "onnx_parity_rows", report.rows_compared)
    tag = ONNX_PASSED if report.passed else f"failed: parity: {report.why_failed()}"
    return _tag(client, model_name, version, run_id, tag, parity)


def _logged_test_split(spark: SparkSession, client: MlflowClient, run_id: str, destination: Path) -> DataFrame:
    try:
        path = download_test_split(run_id, str(destination), client)
    except Exception as exc:
        raise RuntimeError(f"run {run_id} has no held-out split {TEST_SPLIT} to check parity on") from exc
    return spark.read.parquet(path)


def _tag(client: MlflowClient, model_name: str, version: str, run_id: str, tag: str, parity) -> OnnxExport:
    if tag != ONNX_PASSED:
        _logger.warning("ONNX export of %s version %s: %s", model_name, version, tag)
    client.set_model_version_tag(model_name, version, ONNX_TAG, tag[:5000])
    return OnnxExport(model_name, version, run_id, tag, parity)
