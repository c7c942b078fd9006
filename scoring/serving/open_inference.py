"""The Open Inference Protocol (v2, REST: KServe's and Triton's), beside MLflow's own protocol, so the server can stand
where KServe or a Triton client expects a model server.

    GET  /v2/health/live                  {"live": true}
    GET  /v2/health/ready                 {"ready": true}; 503 {"ready": false} once a SIGTERM started the drain
    GET  /v2/models/{name}                metadata: each input column's name, datatype and shape, from the signature;
                                          outputs `predict` and, for a classifier, `probability`
    POST /v2/models/{name}/infer          named input tensors, one per column ([n] or [n, 1]), or one 2-D tensor
                                          [n, columns] in the signature's order → `predict` (and `probability`
                                          when `"parameters": {"probability": true}` or when it is a requested output)

The rows go through the same binding, batching, predictions and inference log as /invocations, so both answer the
same. Tensors are JSON (Triton's binary extension is refused with the reason). Errors are `{"error": ...}`: 404 for a
model this server does not serve (naming the one it serves), 400 for a tensor of the wrong shape or datatype (naming
the input).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from scoring.serving.prediction_backends import Prediction
from scoring.serving.request_body import ParsedRequest, RequestError
from scoring.serving.served_model import ServedModel
from scoring.serving.signature_columns import InputColumn, Rows, bind_columns

# MLflow's column types as the protocol's datatypes, and which datatypes a column of each type takes.
DATATYPES = {"double": "FP64", "float": "FP32", "long": "INT64", "integer": "INT32", "boolean": "BOOL",
             "string": "BYTES", "binary": "BYTES", "datetime": "BYTES"}  # fmt: skip
_INTS = {"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}
_TAKES = {"FP64": _INTS | {"FP16", "FP32", "FP64"}, "FP32": _INTS | {"FP16", "FP32", "FP64"}, "INT64": _INTS,
          "INT32": _INTS, "BOOL": {"BOOL"}, "BYTES": {"BYTES"}}  # fmt: skip
OUTPUTS = ("predict", "probability")

Score = Callable[[ServedModel, Rows, bool], Awaitable[Prediction]]


def v2_routes(current: Callable[[], ServedModel], ready: Callable[[], bool], score: Score) -> list[Route]:
    """The protocol's routes over the version `current()` serves; `score` predicts (and logs) like /invocations."""

    async def live(request: Request) -> Response:
        return JSONResponse({"live": True})

    async def is_ready(request: Request) -> Response:
        return JSONResponse({"ready": ready()}, status_code=200 if ready() else 503)

    async def metadata(request: Request) -> Response:
        served = current()
        refused = _unknown_model(request.path_params["name"], served)
        if refused is not None:
            return refused
        inputs = [{"name": c.name, "datatype": DATATYPES.get(c.type, "BYTES"), "shape": [-1]} for c in served.inputs]
        outputs = [{"name": "predict", "datatype": _output_datatype(served), "shape": [-1]}]
        if served.classes is not None:
            width = -1 if len(served.classes) > 2 else None
            shape = [-1, width] if width else [-1]
            outputs.append({"name": "probability", "datatype": "FP64", "shape": shape})
        return JSONResponse({"name": _name(served), "versions": [str(served.version or "")], "platform": "mlflow",
                             "inputs": inputs, "outputs": outputs})  # fmt: skip

    async def infer(request: Request) -> Response:
        served = current()
        refused = _unknown_model(request.path_params["name"], served)
        if refused is not None:
            return refused
        try:
            if request.headers.get("inference-header-content-length"):
                raise RequestError(400, "binary tensor data is not taken: send JSON tensors (binary_data=False)")
            document = _json(await request.body())
            wanted = _outputs_wanted(document, served)
            rows = bind_columns(ParsedRequest(columns=_columns(document.get("inputs"), served.inputs)), served.inputs)
            prediction = await score(served, rows, "probability" in wanted)
        except RequestError as exc:
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        except Exception as exc:  # noqa: BLE001 - the model failed: one line, the traceback is in the log
            return JSONResponse({"error": f"model {served.label} failed: {type(exc).__name__}: {exc}"}, 500)
        outputs = []
        if "predict" in wanted:
            values = prediction.values
            outputs.append({"name": "predict", "datatype": _datatype_of(values), "shape": [len(values)],
                            "data": values})  # fmt: skip
        if "probability" in wanted:
            matrix = np.asarray(prediction.probability, dtype=float)
            outputs.append({"name": "probability", "datatype": "FP64", "shape": list(matrix.shape),
                            "data": matrix.ravel().tolist()})  # fmt: skip
        body = {"model_name": _name(served), "model_version": str(served.version or ""), "outputs": outputs}
        if "id" in document:
            body["id"] = document["id"]
        return Response(json.dumps(body, allow_nan=True), media_type="application/json")

    async def server_metadata(request: Request) -> Response:
        import mlflow

        return JSONResponse({"name": "spark-model-lifecycle serve", "version": mlflow.__version__, "extensions": []})

    return [
        Route("/v2", server_metadata, methods=["GET"]),
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", is_ready, methods=["GET"]),
        Route("/v2/models/{name}", metadata, methods=["GET"]),
        Route("/v2/models/{name}/ready", is_ready, methods=["GET"]),
        Route("/v2/models/{name}/infer", infer, methods=["POST"]),
    ]


def _name(served: ServedModel) -> str:
    return served.name or "model"  # a runs:/ URI has no registered name


def _unknown_model(name: str, served: ServedModel) -> Response | None:
    if name == _name(served):
        return None
    return JSONResponse({"error": f"model {name!r} is not served here; this server serves {_name(served)!r} "
                                  f"(version {served.version})"}, status_code=404)  # fmt: skip


def _json(body: bytes) -> dict:
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestError(400, f"malformed JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("inputs"), list) or not document["inputs"]:
        raise RequestError(400, 'the body must be a JSON object with "inputs": a list of tensors')
    return document


def _outputs_wanted(document: dict, served: ServedModel) -> set[str]:
    asked = document.get("outputs")
    if asked:
        names = {o.get("name") if isinstance(o, dict) else None for o in asked}
        unknown = sorted(str(n) for n in names - set(OUTPUTS))
        if unknown:
            raise RequestError(400, f"unknown output(s) {', '.join(unknown)}; this model gives: predict, probability")
    else:
        probability = (document.get("parameters") or {}).get("probability", False)
        if not isinstance(probability, bool):
            raise RequestError(400, f"parameters.probability must be true or false, got {probability!r}")
        names = {"predict", "probability"} if probability else {"predict"}
    if "probability" in names and served.classes is None:
        raise RequestError(400, f"model {served.label} is not a classifier: it has no probabilities to return")
    return names


def _columns(tensors: list, signature: tuple[InputColumn, ...]) -> dict[str, list]:
    """Each column's values from named tensors (one per column), or from one 2-D tensor [rows, columns]."""
    by_name = {c.name: c for c in signature}
    parsed = [_tensor(t) for t in tensors]
    if len(parsed) == 1 and parsed[0][0] not in by_name and len(parsed[0][1]) == 2:
        name, shape, datatype, data = parsed[0]
        if shape[1] != len(signature):
            raise RequestError(400, f"input {name!r} has shape {shape}: a 2-D input needs one column per model "
                                    f"input ({len(signature)}: {', '.join(by_name)})")  # fmt: skip
        for column in signature:
            _check_datatype(name, datatype, column)
        matrix = np.asarray(data, dtype=object).reshape(shape)
        return {column.name: matrix[:, i].tolist() for i, column in enumerate(signature)}
    columns, lengths = {}, set()
    for name, shape, datatype, data in parsed:
        if name not in by_name:
            continue  # like /invocations: a column the model does not take is ignored
        if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
            raise RequestError(400, f"input {name!r} has shape {shape}: one column is [rows] or [rows, 1]")
        _check_datatype(name, datatype, by_name[name])
        columns[name] = list(data)
        lengths.add(shape[0])
    if len(lengths) > 1:
        raise RequestError(400, f"the inputs hold different numbers of rows: {sorted(lengths)}")
    return columns


def _tensor(tensor) -> tuple[str, list[int], str, list]:
    if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
        raise RequestError(400, "each input must be an object with name, shape, datatype and data")
    name, shape, datatype = tensor["name"], tensor.get("shape"), tensor.get("datatype")
    if not isinstance(shape, list) or not shape or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise RequestError(400, f"input {name!r}: shape must be a list of sizes, got {shape!r}")
    if "data" not in tensor:
        raise RequestError(400, f"input {name!r} has no data (binary tensor data is not taken)")
    data = np.asarray(tensor["data"], dtype=object).ravel().tolist()
    if len(data) != int(np.prod(shape)):
        raise RequestError(400, f"input {name!r} has shape {shape} but {len(data)} values")
    return name, shape, str(datatype), data


def _check_datatype(name: str, datatype: str, column: InputColumn) -> None:
    expected = DATATYPES.get(column.type, "BYTES")
    if datatype not in _TAKES.get(expected, {expected}):
        raise RequestError(400, f"input {name!r} has datatype {datatype}; column {column.name!r} is {column.type} "
                                f"({expected})")  # fmt: skip


def _datatype_of(values: list) -> str:
    kinds = {type(v) for v in values if v is not None}
    if kinds <= {bool}:
        return "BOOL"
    if kinds <= {int}:
        return "INT64"
    if kinds <= {int, float}:
        return "FP64"
    return "BYTES"


def _output_datatype(served: ServedModel) -> str:
    classes = served.classes
    return _datatype_of([c.item() if hasattr(c, "item") else c for c in classes]) if classes else "FP64"
