"""The scoring server: answers as the model does, refuses bad requests with the right status and never dies, exits 2
on a model it cannot serve, and follows the registry without failing a request.

In-process tests call the real ASGI app (tests/asgi.py); the end-to-end tests start the real `serve` entry point
and talk HTTP to it."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pytest

from bench.http_load import run_load
from common.datasets import load_table
from tests.asgi import call, post_json
from tests.helpers import start_module
from tests.scoring.serving.conftest import AlwaysFails, log_pyfunc, split_body
from tests.shapes.conftest import using_store

CANCER = load_table("breast_cancer").frame
FEATURES = CANCER.drop(columns=["target"])

# Plain test pyfuncs: MLflow suggests type hints on their predict when they are logged.
pytestmark = pytest.mark.filterwarnings("ignore:.*Add type hints")


def test_predictions_and_probabilities_are_the_models_own_for_every_row(store, app_for):
    app = app_for("models:/cancer/1")
    with using_store(store):
        model = mlflow.sklearn.load_model("models:/cancer/1")

    reply = post_json(app, split_body(FEATURES), query="probability=true")

    assert reply.status == 200
    assert (reply.headers["x-model-name"], reply.headers["x-model-version"]) == ("cancer", "1")
    body = reply.json()
    assert (body["model_name"], body["model_version"], body["classes"]) == ("cancer", "1", [0, 1])
    assert len(body["predictions"]) == len(FEATURES)
    assert [p["prediction"] for p in body["predictions"]] == model.predict(FEATURES).tolist()
    np.testing.assert_allclose(
        [p["probability"] for p in body["predictions"]], model.predict_proba(FEATURES)[:, 1], rtol=1e-12
    )
    plain = post_json(app, {"dataframe_records": json.loads(FEATURES.head(3).to_json(orient="records"))}).json()
    assert plain["predictions"] == model.predict(FEATURES.head(3)).tolist()


def test_a_regressors_predictions_are_its_own_and_it_refuses_probabilities(store, app_for):
    app = app_for("models:/diabetes/1")
    X = load_table("diabetes").frame.drop(columns=["target"])
    with using_store(store):
        model = mlflow.sklearn.load_model("models:/diabetes/1")

    body = post_json(app, {"inputs": {name: X[name].tolist() for name in X.columns}}).json()
    refused = post_json(app, {**split_body(X.head(1)), "params": {"probability": True}})

    np.testing.assert_allclose(body["predictions"], model.predict(X), rtol=1e-12)
    assert refused.status == 400 and "not a classifier" in refused.json()["message"]


def test_bad_requests_get_their_status_and_the_server_keeps_answering(app_for):
    app = app_for("models:/cancer/1", max_body_bytes=4096)
    good = split_body(FEATURES.head(1))

    not_found = call(app, "GET", "/predict")
    wrong_method = call(app, "GET", "/invocations")
    malformed = call(app, "POST", "/invocations", b'{"dataframe_split": ', "application/json")
    wrong_type = call(app, "POST", "/invocations", b"<xml/>", "application/xml")
    too_large = post_json(app, split_body(FEATURES.head(40)))
    missing = post_json(app, {"dataframe_records": [{"mean_radius": 1.0}]})
    wrong_value = post_json(app, {"dataframe_records": [{**FEATURES.iloc[0].to_dict(), "mean_area": "big"}]})

    assert (not_found.status, not_found.json()["error_code"]) == (404, "ENDPOINT_NOT_FOUND")
    assert wrong_method.status == 405
    assert malformed.status == 400 and malformed.json()["message"].startswith("malformed JSON")
    assert wrong_type.status == 415 and "application/xml" in wrong_type.json()["message"]
    assert too_large.status == 413 and "4096" in too_large.json()["message"]
    assert missing.status == 400 and "'mean_texture' (double)" in missing.json()["message"]
    assert (
        wrong_value.status == 400
        and "column 'mean_area': expected double, found str 'big'" in (wrong_value.json()["message"])
    )
    assert post_json(app, good).status == 200


def test_a_model_error_is_a_500_with_one_short_line_and_the_next_request_is_answered(app_for):
    app = app_for("models:/exploding/1")

    failed = post_json(app, {"inputs": {"x": [-1.0]}})
    answered = post_json(app, {"inputs": {"x": [np.e - 1]}})

    assert failed.status == 500
    message = failed.json()["message"]
    assert message == "model exploding v1 failed: ArithmeticError: negative x: cannot take its logarithm"
    assert answered.status == 200 and answered.json()["predictions"] == pytest.approx([1.0])


def test_health_ping_and_version_answer_like_mlflows_server(app_for):
    app = app_for("models:/cancer/latest")

    health = call(app, "GET", "/health").json()

    assert call(app, "GET", "/ping").status == 200
    assert call(app, "GET", "/version").body.decode() == mlflow.__version__
    assert (health["model_name"], health["model_version"], health["backend"]) == ("cancer", "2", "python")
    assert health["follows_registry"] is True and health["error"] is None


# --- the real process -------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as reply:  # noqa: S310 - a local test server
        return reply.status, reply.read()


def _wait_until_up(process, base: str, log: Path, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if _get(f"{base}/ping")[0] == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"the server did not answer /ping in {seconds} s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def server(store, tmp_path):
    """Start `python -m scoring.serving.serve` on a free port; stopped (with its process group) after the test."""
    import os
    import signal

    started = []

    def start(uri: str, *extra: str) -> str:
        port = _free_port()
        log = tmp_path / f"serve-{port}.log"
        process = start_module(
            "scoring.serving.serve", ["--model-uri", uri, "--port", str(port), *extra], store.uri, log
        )  # fmt: skip
        started.append(process)
        base = f"http://127.0.0.1:{port}"
        _wait_until_up(process, base, log)
        return base

    start.started = started  # the processes, for a test that signals one itself
    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)


def _health(base: str) -> dict:
    return json.loads(_get(f"{base}/health")[1])


@pytest.mark.e2e
def test_serving_follows_an_alias_through_a_swap_under_load_without_failing_a_request(store, server):
    body = json.dumps(split_body(FEATURES.head(1))).encode()
    with using_store(store):
        client = mlflow.MlflowClient()
        client.set_registered_model_alias("cancer", "champion", "1")
        base = server("models:/cancer@champion", "--reload-seconds", "0.5", "--workers", "2")
        results = {}
        loader = threading.Thread(
            target=lambda: results.update(load=run_load(f"{base}/invocations", body, "application/json", 3000, 8))
        )
        loader.start()
        time.sleep(1.0)
        client.set_registered_model_alias("cancer", "champion", "2")
        loader.join(timeout=300)

        load = results["load"]
        assert sum(load.errors.values()) == 0, load.errors
        assert set(load.versions) == {"1", "2"}  # answered by v1, then by v2, with no failure in between
        assert len(load.latencies_ms) == 3000

        # A version the server must not swap in (it fails its probe prediction): the old one keeps serving.
        log_pyfunc(AlwaysFails(), "cancer")  # cancer v3
        client.set_registered_model_alias("cancer", "champion", "3")
        # Each worker downloads, probes and refuses v3 on its own, and /health answers from whichever worker took the
        # connection: the answer that reports the refusal is the one to check, not a later one from the other worker.
        deadline = time.monotonic() + 180  # a shared machine can be slow
        health = _health(base)
        while health["error"] is None and time.monotonic() < deadline:
            time.sleep(0.3)
            health = _health(base)
    assert health["model_version"] == "2"
    assert health["error"] is not None, "v3 was neither swapped in nor refused within 180 s"
    assert "cancer v3 was not swapped in" in health["error"] and "still serving cancer v2" in health["error"]
    assert run_load(f"{base}/invocations", body, "application/json", 50, 2).versions == {"2": 50}


@pytest.mark.e2e
def test_the_serve_entry_point_answers_through_mlflow_run(store, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    from tests.helpers import REPO, job_env

    port = _free_port()
    log = tmp_path / "mlflow-run.log"
    with open(log, "ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "run", str(REPO), "-e", "serve", "--env-manager", "local",
             "-P", "model_uri=models:/cancer/1", "-P", f"port={port}"],
            cwd=tmp_path, env=job_env(store.uri), stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(process, base, log)
        request = urllib.request.Request(
            f"{base}/invocations", data=FEATURES.head(2).to_csv(index=False).encode(),
            headers={"Content-Type": "text/csv"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as reply:  # noqa: S310 - a local test server
            answer, version = json.loads(reply.read()), reply.headers["X-Model-Version"]
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    assert (len(answer["predictions"]), version) == (2, "1")
    assert "serving cancer v1 with in-process Python" in log.read_text()


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("models:/nobody/production", "error: registered model 'nobody' does not exist"),
        ("models:/cancer/7", "error: model 'cancer' has no version '7'"),
        ("models:/gone/1", "error: model gone v1 does not load: "),
        ("models:/cancer/1", "error: port must be 1..65535, got 70000"),
    ],
    ids=["unknown-model", "unknown-version", "artifacts-gone", "bad-port"],
)
def test_a_model_it_cannot_serve_exits_2_with_one_line_before_listening(store, capsys, uri, message):
    from common.cli import run_cli
    from scoring.serving.serve import main

    with using_store(store), pytest.raises(SystemExit) as exited:
        run_cli(main, ["--model-uri", uri, "--port", "70000" if "port" in message else str(_free_port())])

    assert exited.value.code == 2
    stderr = capsys.readouterr().err
    assert stderr.splitlines()[-1].startswith(message) and "Traceback" not in stderr, stderr


def test_requests_waiting_for_a_busy_model_are_predicted_together_and_each_gets_its_own_rows(store, app_for):
    import asyncio

    from tests.asgi import call_async

    app = app_for("models:/cancer/1")
    with using_store(store):
        model = mlflow.sklearn.load_model("models:/cancer/1")
    calls = []
    original = model.__class__.predict_proba

    def counted(self, X):
        calls.append(len(X))
        return original(self, X)

    # 40 single-row requests at once: each must get its own row's answer, however they were grouped.
    rows = [FEATURES.iloc[[i]] for i in range(40)]
    bodies = [
        json.dumps({**split_body(row), "params": {"probability": i % 2 == 0}}).encode() for i, row in enumerate(rows)
    ]

    async def all_at_once():
        return await asyncio.gather(*[call_async(app, "POST", "/invocations", b, "application/json") for b in bodies])

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(model.__class__, "predict_proba", counted)
        replies = asyncio.run(all_at_once())

    assert [r.status for r in replies] == [200] * 40
    for i, reply in enumerate(replies):
        (answer,) = reply.json()["predictions"]
        expected = model.predict(rows[i])[0]
        if i % 2 == 0:
            assert answer["prediction"] == expected
            assert answer["probability"] == pytest.approx(model.predict_proba(rows[i])[0, 1], rel=1e-12)
        else:
            assert answer == expected
    assert sum(calls) == 40 and len(calls) < 40  # every row predicted once, in fewer calls than requests


def test_a_request_that_fails_in_a_batch_fails_alone(app_for):
    import asyncio

    from tests.asgi import call_async

    app = app_for("models:/exploding/1")
    xs = [1.0, 2.0, -1.0, 3.0, 4.0]

    async def all_at_once():
        return await asyncio.gather(
            *[call_async(app, "POST", "/invocations", json.dumps({"inputs": {"x": [x]}}).encode(), "application/json")
              for x in xs]
        )  # fmt: skip

    replies = asyncio.run(all_at_once())

    assert [r.status for r in replies] == [200, 200, 500, 200, 200]
    assert [r.json()["predictions"][0] for r in replies if r.status == 200] == pytest.approx(np.log1p([1, 2, 3, 4]))


@pytest.mark.e2e
def test_sigterm_drains_two_workers_and_every_accepted_request_is_answered_and_logged(server, tmp_path):
    """Under load at concurrency 8: /health turns 503 while requests are still answered, then new connections are
    refused, the process exits 0, and the inference log (written by both workers, flushed at shutdown) holds one row
    per answered request: no request the server took went unanswered. /metrics sums both workers."""
    import os
    import signal
    import urllib.error

    import pyarrow.parquet as pq

    from tests.scoring.serving.test_metrics import samples

    log_dir = tmp_path / "inference-log"
    body = json.dumps(split_body(FEATURES.head(1))).encode()
    base = server("models:/cancer/1", "--workers", "2", "--drain-seconds", "2", "--log-dir", str(log_dir))
    process = server.started[-1]
    warm = run_load(f"{base}/invocations", body, "application/json", 64, 8)
    scraped = samples(_get(f"{base}/metrics")[1].decode())
    assert warm.ok == 64
    assert scraped[("serving_requests_total", (("endpoint", "/invocations"), ("status", "200")))] == 64.0
    assert scraped[("serving_request_rows_sum", ())] == 64.0

    # More requests than two workers answer in the 0.5 s before SIGTERM and the 2 s drain (a logistic regression at
    # concurrency 8: about 600 req/s per worker on an idle machine, docs/benchmarks.md, so at most about 3,000), so the
    # load is still running when the server stops taking connections; every request past that is one refused
    # connect, so 20,000 only lengthened the refused tail and proved nothing 8,000 does not.
    requests = 8_000
    results = {}
    loader = threading.Thread(
        target=lambda: results.update(load=run_load(f"{base}/invocations", body, "application/json", requests, 8, 60))
    )
    loader.start()
    time.sleep(0.5)
    os.kill(process.pid, signal.SIGTERM)
    health_statuses = []
    for _ in range(50):  # until a worker says it is draining (the parent passes the signal on within 0.5 s)
        try:
            health_statuses.append(_get(f"{base}/health")[0])
        except urllib.error.HTTPError as refused:
            health_statuses.append(refused.code)
            break
        time.sleep(0.05)
    loader.join(timeout=120)
    exit_code = process.wait(timeout=60)

    load = results["load"]
    assert exit_code == 0
    assert health_statuses[-1] == 503
    assert 0 < load.ok < requests, load.summary()  # answered until the deadline, refused after it
    assert all(kind.startswith("connection") for kind in load.errors), load.errors  # never a 5xx nor a timeout
    files = sorted(log_dir.glob("part-*.parquet"))
    assert 1 <= len({f.name.split("-")[2] for f in files}) <= 2  # a sequence per worker that answered (its pid)
    assert sum(pq.read_metadata(f).num_rows for f in files) == 64 + load.ok
