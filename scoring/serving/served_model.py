"""One model version made ready to answer requests: downloaded, its signature read, the fastest faithful way to
predict chosen, and a probe prediction made before it is ever served.

How a version answers, fastest first (the backends are scoring.serving.prediction_backends): `onnx` for an MLlib
pipeline whose ONNX export passed parity with Spark, `python` for scikit-learn and pyfunc models, `spark` (a Spark
job per request, and the server says so at start) for an MLlib pipeline without one.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import weakref
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.models import Model

from common.errors import UserInputError
from common.model_uri import ResolvedModel
from scoring.input_schema import require_named_signature
from scoring.serving.prediction_backends import Prediction, PythonBackend, mllib_backend
from scoring.serving.request_body import ParsedRequest, RequestError, first_line
from scoring.serving.signature_columns import InputColumn, Rows, bind_columns

_logger = logging.getLogger(__name__)


class ModelLoadError(UserInputError):
    """A version that cannot be served: it does not download, load, or answer its own input example."""


class ServedModel:
    """A loaded version. Immutable once built: a swap replaces the whole object, so a request that started on
    one version finishes on it."""

    def __init__(self, resolved: ResolvedModel, signature, backend, how: str, folder: Path):
        self.resolved = resolved
        self.inputs = tuple(InputColumn(spec.name, spec.type.name, spec.required) for spec in signature.inputs.inputs)
        self.backend = backend
        self.how = how  # one line for the log and /health: which path answers, and why
        # The downloaded files go when the last request holding this version is done with it.
        weakref.finalize(self, shutil.rmtree, str(folder), True)

    @property
    def name(self) -> str | None:
        return self.resolved.model_name

    @property
    def version(self) -> str | None:
        return self.resolved.model_version

    @property
    def label(self) -> str:
        return self.resolved.label

    @property
    def kind(self) -> str:
        return self.backend.kind

    @property
    def classes(self) -> list | None:
        return self.backend.classes

    @property
    def batches(self) -> bool:
        """Whether requests that wait for a busy model are predicted together (see scoring.serving.batching)."""
        return self.backend.kind != "onnx"

    def check(self, rows: Rows, probability: bool) -> None:
        """What can be refused before predicting: the client's mistakes, answered 400."""
        if probability and self.backend.classes is None:
            raise RequestError(400, f"model {self.label} is not a classifier: it has no probabilities to return")
        self.backend.check(rows)

    def answer(self, rows: Rows, probability: bool) -> Prediction:
        self.check(rows, probability)
        return self.backend.predict(rows, probability)


def load_served_model(client: mlflow.MlflowClient, resolved: ResolvedModel) -> ServedModel:
    """Download, load and probe `resolved`; ModelLoadError says why a version cannot be served."""
    folder = Path(tempfile.mkdtemp(prefix="served-model-"))
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=resolved.load_uri, dst_path=str(folder)))
        info = Model.load(str(local))
        signature = require_named_signature(info.signature, resolved.label)
        if "spark" in info.flavors:
            backend, how = mllib_backend(client, resolved, local, folder, signature)
        else:
            backend, how = PythonBackend(local, info, signature), "in-process Python"
        served = ServedModel(resolved, signature, backend, how, folder)
        _probe(served, info, local)
        return served
    except ModelLoadError:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    except Exception as exc:  # noqa: BLE001 - any failure to load is reported as one line, not a traceback
        shutil.rmtree(folder, ignore_errors=True)
        raise ModelLoadError(f"model {resolved.label} does not load: {type(exc).__name__}: {first_line(exc)}") from exc


def _probe(served: ServedModel, info: Model, local: Path) -> None:
    """Answer the version's own input example before serving it: a version that cannot is never swapped in."""
    example = info.load_input_example(str(local))
    if not isinstance(example, pd.DataFrame) or example.empty:
        return  # nothing to probe with; the signature was still read
    try:
        served.answer(bind_columns(ParsedRequest(frame=example), served.inputs), probability=served.classes is not None)
    except Exception as exc:  # noqa: BLE001 - the version is refused with the reason
        raise ModelLoadError(
            f"model {served.label} failed its probe prediction on its input example: "
            f"{type(exc).__name__}: {first_line(exc)}"
        ) from exc
