"""Bad input is refused as MLflow's own scoring server refuses it: each body of the table is sent to our app and to
MLflow's (`mlflow.pyfunc.scoring_server.init`, the FastAPI app `mlflow models serve` runs), both in-process over
the same registered version, and the status codes must be equal.

Left out on purpose (our documented differences): the plain `{"columns", "data"}` body (we answer it, MLflow 400),
a body over max_body_mb (413; MLflow has no limit), no Content-Type at all (we 415; MLflow's handler fails on the
missing header with a 500), and a model that raises (we 500, MLflow 400)."""

from __future__ import annotations

import json

import mlflow
import pytest

from tests.asgi import call
from tests.scoring.serving.conftest import FEATURES
from tests.shapes.conftest import using_store

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

GOOD = json.dumps({"dataframe_split": json.loads(FEATURES.head(2).to_json(orient="split"))}).encode()
CSV = FEATURES.head(2).to_csv(index=False).encode()
ROW = json.loads(FEATURES.head(1).to_json(orient="records"))[0]

CASES = {
    "json": ("application/json", GOOD, 200),
    "json-utf8": ("application/json; charset=utf-8", GOOD, 200),
    "unknown-parameter": ("application/json; something=something", GOOD, 415),
    "empty-parameter": ("application/json;", GOOD, 415),
    "capital-parameter": ("application/json; Charset=utf-8", GOOD, 415),
    "latin-1": ("application/json; charset=latin-1", GOOD, 415),
    "utf8-spelling": ("application/json; charset=utf8", GOOD, 415),
    "csv-header-parameter": ("text/csv; header=present", CSV, 415),
    "xml": ("application/xml", b"<x/>", 415),
    "upper-case-type": ("Application/JSON", GOOD, 415),
    "malformed-json": ("application/json", b'{"dataframe_split": ', 400),
    "not-utf8": ("application/json", b'{"inputs": "\xff\xfe"}', 400),
    "json-list": ("application/json", b"[1, 2]", 400),
    "json-number": ("application/json", b"3", 400),
    "no-known-key": ("application/json", b'{"rows": [1]}', 400),
    "two-keys": ("application/json", json.dumps({"inputs": [ROW], "dataframe_records": [ROW]}).encode(), 400),
    "missing-column": ("application/json", b'{"dataframe_records": [{"mean_radius": 1.0}]}', 400),
    "text-in-a-double": (
        "application/json",
        json.dumps({"dataframe_records": [ROW | {"mean_area": "big"}]}).encode(),
        400,
    ),  # fmt: skip
    "csv": ("text/csv", CSV, 200),
    "empty-csv": ("text/csv", b"", 400),
    "not-parquet": ("application/vnd.apache.parquet", b"not parquet", 400),
}


@pytest.fixture(scope="module")
def both_apps(store):
    from mlflow.environment_variables import _MLFLOW_IS_IN_SERVING_ENVIRONMENT
    from mlflow.pyfunc.scoring_server import init

    from scoring.serving.app import build_app
    from scoring.serving.model_holder import ModelHolder

    with pytest.MonkeyPatch.context() as patch, using_store(store):
        patch.setenv(_MLFLOW_IS_IN_SERVING_ENVIRONMENT.name, "false")  # init() sets it; given back after the module
        theirs = init(mlflow.pyfunc.load_model("models:/cancer/1"))
        yield build_app(ModelHolder.load("models:/cancer/1", 60), 2**20), theirs


@pytest.mark.parametrize("case", list(CASES))
def test_a_body_gets_the_status_mlflows_scoring_server_gives_it(both_apps, case):
    ours, theirs = both_apps
    content_type, body, expected = CASES[case]

    our_status = call(ours, "POST", "/invocations", body, content_type).status
    their_status = call(theirs, "POST", "/invocations", body, content_type).status

    assert (our_status, their_status) == (expected, expected)
