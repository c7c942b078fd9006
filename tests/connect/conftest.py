"""A real Spark Connect server for the tests: the one the installed pyspark ships (sbin/start-connect-server.sh), on
127.0.0.1 and a free port, started once per test session and stopped at its end (by its own process group).

Connect and classic share one pytest process: pyspark switches its functions to Connect for the whole process while
SPARK_CONNECT_MODE_ENABLED is set, so `connect_settings` sets it (with SPARK_REMOTE, the product's switch) for one
test at a time and takes both away afterwards, and the classic `spark` fixture works again in the next test.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pyspark
import pytest

SPARK_HOME = Path(pyspark.__file__).parent
START_SCRIPT = SPARK_HOME / "sbin" / "start-connect-server.sh"
_STARTED = "Spark Connect server started"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _server_env(work: Path) -> dict[str, str]:
    """The server shares nothing with the tests' process but the interpreter: no PYTHONPATH to the repository, so
    the project's code reaches its Python workers only as the jobs ship it (Connect artifacts)."""
    drop = ("PYTHONPATH", "SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED", "SPARK_HOME")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("MLFLOW_")}
    env.update(SPARK_LOG_DIR=str(work), SPARK_PID_DIR=str(work), PYSPARK_PYTHON=sys.executable)
    return env


@pytest.fixture(scope="session")
def connect_server(tmp_path_factory):
    """`sc://127.0.0.1:<port>` of a running Connect server (local[2], UTC)."""
    work = tmp_path_factory.mktemp("connect-server")
    port = _free_port()
    command = [
        "bash", str(START_SCRIPT), "--wait", "--master", "local[2]",
        "--conf", "spark.connect.grpc.binding.address=127.0.0.1",
        "--conf", f"spark.connect.grpc.binding.port={port}",
        "--conf", "spark.ui.enabled=false",
        "--conf", "spark.driver.memory=1g",
        "--conf", "spark.sql.session.timeZone=UTC",
    ]  # fmt: skip
    log_path = work / "server.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            command, cwd=work, env=_server_env(work), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_until_started(server, log_path, port)
        yield f"sc://127.0.0.1:{port}"
    finally:
        _stop(server)


def _wait_until_started(server: subprocess.Popen, log_path: Path, port: int, limit_s: float = 240) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            tail = log_path.read_text()[-3000:]
            raise RuntimeError(f"the Spark Connect server exited ({server.returncode}):\n{tail}")
        if _STARTED in log_path.read_text(errors="replace"):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    return
        time.sleep(0.5)
    _stop(server)
    raise RuntimeError(f"the Spark Connect server did not start in {limit_s:.0f} s:\n{log_path.read_text()[-3000:]}")


def _stop(server: subprocess.Popen) -> None:
    """The script, spark-submit and the JVM share the process group the server was started in."""
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


@pytest.fixture
def connect_settings(settings, connect_server, spark, monkeypatch):
    """This test's settings pointed at the Connect server, and SPARK_REMOTE set as a user sets it; classic mode
    again after the test. The classic session (`spark`) is started first: once a Connect client's gRPC threads run
    in the process, the fork that launches a classic JVM gateway can die in gRPC's fork handlers ("Java gateway
    process exited"), and the test worker's every later test would lose its Spark."""
    monkeypatch.setenv("SPARK_REMOTE", connect_server)
    yield replace(settings, spark_remote=connect_server)
    os.environ.pop("SPARK_CONNECT_MODE_ENABLED", None)


@contextmanager
def classic_mode():
    """Inside a Connect test, a stretch of classic pyspark (the `spark` fixture's session): what classic mode gives
    for the same model, to compare row by row. Connect again afterwards."""
    saved = {key: os.environ.pop(key, None) for key in ("SPARK_CONNECT_MODE_ENABLED", "SPARK_REMOTE")}
    try:
        yield
    finally:
        os.environ.update({key: value for key, value in saved.items() if value is not None})


@pytest.fixture
def connect_spark(connect_settings):
    """The Connect session the jobs build from the settings (one per server: the project's packages go once)."""
    from common.spark import build_spark

    return build_spark(connect_settings, app_name="tests-connect")


# The scoring tests' production model (a logistic regression on breast_cancer, 'cancer' v1 in Production), trained
# once per test run and copied into each test's store: the strategies here score the model they score in classic mode.
from tests.scoring.conftest import _production_store, production_model  # noqa: E402, F401
