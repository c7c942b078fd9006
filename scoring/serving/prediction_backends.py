"""The ways a loaded version predicts, one backend per way, each answering `predict(rows, probability)` with a
`Prediction` in the types batch scoring writes:

- `OnnxBackend`: an MLlib pipeline whose ONNX export passed its parity check against Spark (training.mllib_onnx)
  runs in onnxruntime, in this process: no JVM.
- `PythonBackend`: a scikit-learn or pyfunc model (the per-group router among them) predicts in this process.
- `SparkBackend`: an MLlib pipeline without a passing ONNX export is answered by its own `transform` on a local
  Spark session: correct, but a Spark job per request (tens to hundreds of milliseconds).

Apart from scoring.serving.served_model because a backend is how one kind of model computes, while that module
decides which backend a version gets, probes it and keeps its files: adding a way to predict touches only this file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pyarrow as pa
from mlflow.models import Model

from common.model_uri import ResolvedModel
from common.per_group_format import group_key, read_manifest, unseen_groups_message
from scoring.batch.dataframe import prediction_arrow_type
from scoring.batch.executor import FRAME, ScoringPlan, load_model, predict
from scoring.batch.plan import probability_kind
from scoring.per_group_guard import group_column
from scoring.serving.request_body import RequestError
from scoring.serving.signature_columns import Rows

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prediction:
    values: list  # one per row, in the type batch scoring writes
    probability: list | None  # P(second class) per row for two classes, one list per row otherwise; None: no proba


def mllib_backend(client, resolved: ResolvedModel, local: Path, folder: Path, signature):
    # Imported here: a server of scikit-learn models never loads onnxruntime.
    from common.onnx_model import ONNX_ARTIFACT_DIR, ONNX_PASSED, load_onnx_pipeline, read_parity

    status = _onnx_status(client, resolved)
    if status == ONNX_PASSED:
        onnx_dir = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"runs:/{resolved.run_id}/{ONNX_ARTIFACT_DIR}", dst_path=str(folder / "onnx")
            )
        )
        parity = read_parity(onnx_dir)
        if parity.get("passed"):
            how = (
                f"ONNX (parity with Spark: max abs diff {parity.get('max_abs_diff')} over "
                f"{parity.get('rows_compared')} rows)"
            )
            return OnnxBackend(load_onnx_pipeline(onnx_dir), signature), how
        status = "parity report says it did not pass"
    _logger.warning(
        "model %s: no ONNX export that passed parity (%s); answering with Spark's transform on a local session, "
        "a Spark job per request. Export it with: mlflow run . -e export_onnx -P model_uri=%s",
        resolved.label,
        status,
        resolved.load_uri,
    )
    return SparkBackend(local, signature), f"Spark transform on a local session (no ONNX: {status})"


def _onnx_status(client, resolved: ResolvedModel) -> str:
    from common.onnx_model import ONNX_TAG

    if resolved.model_name is None or resolved.run_id is None:
        return "not a registered version"
    tags = client.get_model_version(resolved.model_name, resolved.model_version).tags or {}
    return tags.get(ONNX_TAG, "never exported")


def _probability(matrix: np.ndarray | None, wanted: bool) -> list | None:
    """Probabilities as batch scoring writes them: of the second class for two classes, one per class otherwise."""
    if not wanted or matrix is None:
        return None
    return matrix[:, 1].tolist() if matrix.shape[1] == 2 else matrix.tolist()


def _as_output(values, arrow_type: pa.DataType) -> list:
    """The prediction in the type batch scoring writes (the signature's output type), as JSON-ready values."""
    return pa.array(np.asarray(values), type=arrow_type, from_pandas=True).to_pylist()


class OnnxBackend:
    kind = "onnx"

    def __init__(self, pipeline, signature):
        self.pipeline = pipeline
        self.classes = pipeline.classes
        self._type = prediction_arrow_type(signature)

    def check(self, rows: Rows) -> None:
        pass

    def predict(self, rows: Rows, probability: bool) -> Prediction:
        values, matrix = self.pipeline.predict(rows)
        return Prediction(_as_output(values, self._type), _probability(matrix, probability))


class PythonBackend:
    kind = "python"

    def __init__(self, local: Path, info: Model, signature):
        flavor = "sklearn" if "sklearn" in info.flavors else "python_function"
        self.model = load_model(str(local), flavor)
        kind = probability_kind(self.model) if flavor == "sklearn" else None
        self.classes = list(self.model.classes_) if kind else None
        names = tuple(signature.inputs.input_names())
        self._plan = ScoringPlan("", flavor, names, (), prediction_arrow_type(signature), kind, FRAME)
        routed_by = group_column(info.metadata)
        manifest = read_manifest(local) if routed_by else None
        self._groups = manifest if manifest and not manifest.get("fallback") else None

    def predict(self, rows: Rows, probability: bool) -> Prediction:
        values, matrix = predict(self.model, rows.frame, self._plan)
        return Prediction(_as_output(values, self._plan.prediction_type), _probability(matrix, probability))

    def check(self, rows: Rows) -> None:
        """A per-group model without a fallback knows only its groups: other rows are the client's mistake (400)."""
        if self._groups is None:
            return
        column, known = self._groups["group_column"], self._groups["groups"]
        keys = [group_key(value) for value in rows[column]]
        unseen = sorted({key for key in keys if key is not None and key not in known})
        missing = sum(key is None for key in keys)
        if unseen or missing:
            raise RequestError(400, unseen_groups_message(column, unseen, missing, len(known)))


class SparkBackend:
    """The MLlib pipeline's own transform on a one-core local session (started with the first version that
    needs it). Slow by nature: a Spark job per request."""

    kind = "spark"

    def __init__(self, local: Path, signature):
        from pyspark.ml.feature import IndexToString

        from scoring.batch.spark_flavor import load_pipeline

        self._spark = _local_spark()
        self._pipeline = load_pipeline(str(local))
        self._signature = signature
        self._type = prediction_arrow_type(signature)
        stages = self._pipeline.stages
        n_classes = next((s.numClasses for s in reversed(stages) if hasattr(s, "numClasses")), 0)
        names = next((s.getLabels() for s in stages if isinstance(s, IndexToString)), None)  # a string label's classes
        self.classes = (list(names) if names else list(range(n_classes))) if n_classes else None

    def check(self, rows: Rows) -> None:
        pass

    def predict(self, rows: Rows, probability: bool) -> Prediction:
        from pyspark.sql.pandas.types import from_arrow_type

        from scoring.batch.spark_flavor import transform_scored

        schema = ", ".join(f"`{s.name}` {s.type.to_spark().simpleString()}" for s in self._signature.inputs.inputs)
        frame = rows.frame
        records = frame.astype(object).where(frame.notna(), None).values.tolist()  # NaN -> null, as Spark reads it
        df = self._spark.createDataFrame(records, schema=schema)
        scored, _ = transform_scored(self._pipeline, df, [], from_arrow_type(self._type))
        out = scored.toPandas()
        values = _as_output(out["prediction"], self._type)
        if not probability or "probability" not in out:
            return Prediction(values, None)
        column = out["probability"]
        return Prediction(values, [list(map(float, p)) if hasattr(p, "__len__") else float(p) for p in column])


def _local_spark():
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.master("local[1]")
        .appName("serve")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .getOrCreate()
    )
