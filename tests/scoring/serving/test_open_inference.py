"""The Open Inference Protocol (v2 REST) answers exactly as /invocations does, row by row: requests are made and
answers read by Triton's own Python client (tritonclient.http builds the body and parses the answer), sent to the
real ASGI app in-process. Metadata comes from the signature; another model's name is a 404 naming the served one;
a tensor of the wrong shape or datatype is a 400 naming the input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tritonclient.http as triton

from tests.asgi import call, post_json
from tests.scoring.serving.conftest import FEATURES, split_body

ROWS = FEATURES.head(40)


def _infer(app, inputs, outputs=None, parameters=None, model="cancer"):
    body, json_size = triton.InferenceServerClient.generate_request_body(inputs, outputs, parameters=parameters)
    assert json_size is None  # JSON tensors only (no binary extension)
    reply = call(app, "POST", f"/v2/models/{model}/infer", body, "application/json")
    return reply, (triton.InferenceServerClient.parse_response_body(reply.body) if reply.status == 200 else None)


def _column_inputs(frame):
    inputs = []
    for name in frame.columns:
        tensor = triton.InferInput(name, [len(frame)], "FP64")
        tensor.set_data_from_numpy(frame[name].to_numpy(dtype=np.float64), binary_data=False)
        inputs.append(tensor)
    return inputs


def _json_outputs(*names):
    return [triton.InferRequestedOutput(name, binary_data=False) for name in names]


def test_infer_answers_as_invocations_row_by_row_with_tensors_per_column_or_one_matrix(app_for):
    app = app_for("models:/cancer/1")
    expected = post_json(app, split_body(ROWS), query="probability=true").json()["predictions"]

    _, per_column = _infer(app, _column_inputs(ROWS), _json_outputs("predict", "probability"))
    matrix = triton.InferInput("features", list(ROWS.shape), "FP64")
    matrix.set_data_from_numpy(ROWS.to_numpy(dtype=np.float64), binary_data=False)
    _, one_tensor = _infer(app, [matrix], parameters={"probability": True})
    _, predict_only = _infer(app, _column_inputs(ROWS))

    for answer in (per_column, one_tensor):
        assert answer.as_numpy("predict").tolist() == [row["prediction"] for row in expected]
        assert answer.as_numpy("probability").tolist() == [row["probability"] for row in expected]  # same floats
    assert predict_only.as_numpy("probability") is None
    assert predict_only.get_response()["model_version"] == "1"


def test_health_and_metadata_from_the_signature(app_for):
    app = app_for("models:/cancer/1")

    metadata = call(app, "GET", "/v2/models/cancer").json()

    assert call(app, "GET", "/v2/health/live").json() == {"live": True}
    assert call(app, "GET", "/v2/health/ready").json() == {"ready": True}
    assert [i["name"] for i in metadata["inputs"]] == list(FEATURES.columns)
    assert {i["datatype"] for i in metadata["inputs"]} == {"FP64"}
    assert metadata["outputs"] == [
        {"name": "predict", "datatype": "INT64", "shape": [-1]},
        {"name": "probability", "datatype": "FP64", "shape": [-1]},
    ]
    assert metadata["versions"] == ["1"]


def test_draining_turns_ready_false_and_closes_each_connection_after_its_answer(app_for):
    app = app_for("models:/cancer/1")
    before = call(app, "GET", "/ping")
    app.state.drain.begin()

    ready = call(app, "GET", "/v2/health/ready")
    health = call(app, "GET", "/health")
    ping = call(app, "GET", "/ping")

    assert (ready.status, ready.json()) == (503, {"ready": False})
    assert (health.status, health.json()["status"]) == (503, "draining")
    assert "connection" not in before.headers
    assert (ping.status, ping.headers["connection"]) == (200, "close")  # still answering, on a new connection next


def _raw(app, document, model="cancer"):
    return call(app, "POST", f"/v2/models/{model}/infer", json.dumps(document).encode(), "application/json")


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"model": "titanic"}, 404, "model 'titanic' is not served here; this server serves 'cancer' (version 1)"),
        ({"shape": [2, 3]}, 400, "input 'mean_radius' has shape [2, 3]"),
        ({"shape": [3]}, 400, "input 'mean_radius' has shape [3] but 2 values"),
        ({"datatype": "BYTES"}, 400, "input 'mean_radius' has datatype BYTES; column 'mean_radius' is double (FP64)"),
        ({"outputs": [{"name": "shap"}]}, 400, "unknown output(s) shap"),
    ],
    ids=["unknown-model", "wrong-rank", "wrong-size", "wrong-datatype", "unknown-output"],
)
def test_refusals_name_what_is_wrong(app_for, change, status, message):
    app = app_for("models:/cancer/1")
    rows = FEATURES.head(2)
    inputs = [{"name": n, "shape": [2], "datatype": "FP64", "data": rows[n].tolist()} for n in rows.columns]
    inputs[0] |= {k: v for k, v in change.items() if k in ("shape", "datatype")}
    document = {"inputs": inputs} | ({"outputs": change["outputs"]} if "outputs" in change else {})

    reply = _raw(app, document, change.get("model", "cancer"))

    assert reply.status == status and reply.json()["error"].startswith(message), reply.json()
