"""End to end: the team stack's tracking server (`mlflow server` on PostgreSQL with basic-auth, as `make team` runs
it) delivers a signed `model_version_alias.created` webhook to a real `serve` process, which then answers with the
version the alias names. The server polls the registry once an hour here, so only the webhook can have moved it.

Only PostgreSQL and the tracking server are started (not the stack's Spark cluster): the webhook is the registry's
business alone."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from lifecycle.team.postgres import find_binaries
from lifecycle.team.processes import free_port
from lifecycle.team.registry_only import team_registry
from lifecycle.team.system_packages import can_install
from tests.helpers import REPO, job_env
from training.sklearn.model import log_sklearn_model

SECRET = "webhook-secret-for-the-e2e-test"
MODEL = "hooked"
BODY = json.dumps({"dataframe_split": {"columns": ["x"], "data": [[1.5]]}}).encode()


@pytest.fixture(scope="module")
def registry():
    """PostgreSQL and the team stack's tracking server (lifecycle.team.registry_only), in a
    directory PostgreSQL's own account can pass through (so not pytest's private tmp_path)."""
    if find_binaries() is None and not can_install():
        pytest.skip("PostgreSQL's server is not installed and this user cannot install it: "
                    "install the Debian package `postgresql`")  # fmt: skip
    root = Path(tempfile.mkdtemp(prefix="serve-webhook-"))
    try:
        with team_registry(root) as started:
            yield started
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _answering_version(base: str) -> str | None:
    request = urllib.request.Request(f"{base}/invocations", BODY, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - a local test server
            return answer.headers["X-Model-Version"]
    except OSError:
        return None


def _wait_for_version(process: subprocess.Popen, base: str, version: str, log: Path, seconds: float = 240) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, f"serve exited with {process.returncode}:\n{log.read_text()[-3000:]}"
        if _answering_version(base) == version:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.e2e
def test_a_signed_webhook_from_the_team_server_makes_serve_answer_with_the_new_version(registry, tmp_path, monkeypatch):
    for key, value in registry.env.items():
        monkeypatch.setenv(key, value)
    mlflow.set_tracking_uri(registry.server.url)
    client = mlflow.MlflowClient()
    mlflow.set_experiment("serve-webhook")
    X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    with mlflow.start_run():
        first = log_sklearn_model(LogisticRegression().fit(X, [0, 1, 0, 1]), X, registered_model_name=MODEL)
    second = mlflow.register_model(client.get_model_version(MODEL, first.registered_model_version).source, MODEL)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # The README's registration, before the first alias event (the server caches each event's webhooks a minute).
    client.create_webhook(name="serve-hooked", url=f"{base}/webhooks/mlflow",
                          events=["model_version_alias.created"], secret=SECRET)  # fmt: skip
    client.set_registered_model_alias(MODEL, "production", first.registered_model_version)
    log = tmp_path / "serve.log"
    env = job_env(registry.server.url, registry.env | {"SERVE_WEBHOOK_SECRET": SECRET})
    command = [sys.executable, "-m", "scoring.serving.serve", "--model-uri", f"models:/{MODEL}@production",
               "--port", str(port), "--reload-seconds", "3600"]  # fmt: skip
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        assert _wait_for_version(process, base, first.registered_model_version, log)

        client.set_registered_model_alias(MODEL, "production", second.version)

        assert _wait_for_version(process, base, second.version, log), log.read_text()[-3000:]
        with urllib.request.urlopen(f"{base}/health", timeout=10) as answer:  # noqa: S310 - a local test server
            health = json.loads(answer.read())
        with urllib.request.urlopen(f"{base}/metrics", timeout=10) as answer:  # noqa: S310 - a local test server
            metrics = answer.read().decode()
    finally:
        process.terminate()
        process.wait(60)
    assert (health["model_version"], health["error"]) == (second.version, None)
    assert 'serving_swaps_total{outcome="done"} 1.0' in metrics
    text = log.read_text()
    assert f"registry webhook: model_version_alias.created for {MODEL} v{second.version}" in text
    assert process.returncode == 0
