"""`mlflow server` with the project's app plugin on a store this machine opens itself (SQLite by default, or a
database URI), for as long as the user keeps it: the embedded counterpart of the team stack's server."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from common.errors import UserInputError
from common.settings import DEFAULT_TRACKING_URI
from common.tracking import PROJECT_ROOT
from lifecycle.team.tracking_server import answers_health
from lifecycle.ui.app import APP

_SQLITE = "sqlite:///"


def absolute_store_uri(tracking_uri: str) -> str:
    """A relative SQLite path made absolute (a server started elsewhere, or a command printed for later, still
    opens the same file); other URIs as they are."""
    if tracking_uri.startswith(_SQLITE) and not tracking_uri[len(_SQLITE) :].startswith("/"):
        return _SQLITE + str(Path(tracking_uri[len(_SQLITE) :]).resolve())
    return tracking_uri


def ui_command(tracking_uri: str) -> str:
    """The command that opens the UI on this store: `make ui` for the project folder's default store (where the
    quickstart's `mlflow run` keeps it), else `python -m lifecycle.ui` told the store."""
    project_store = absolute_store_uri(_SQLITE + str(PROJECT_ROOT / DEFAULT_TRACKING_URI.removeprefix(_SQLITE)))
    if absolute_store_uri(tracking_uri) == project_store:
        return "make ui"
    return f"MLFLOW_TRACKING_URI={absolute_store_uri(tracking_uri)} python -m lifecycle.ui"


@dataclass(frozen=True)
class LocalServer:
    store_uri: str
    host: str = "127.0.0.1"
    port: int = 5000

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "mlflow", "server", "--app-name", APP,
            "--backend-store-uri", absolute_store_uri(self.store_uri),
            "--host", self.host, "--port", str(self.port), "--workers", "1",
            # As the team stack's server: uvicorn on asyncio and h11, not the uvloop/httptools this project
            # installs for its scoring server (a combination under which a tracking request went unanswered).
            "--uvicorn-opts", "--loop asyncio --http h11",
        ]  # fmt: skip

    def start(self) -> subprocess.Popen:
        """The server, its output on this terminal; fails in one line when the port is taken."""
        if not _port_is_free(self.host, self.port):
            raise UserInputError(f"port {self.port} on {self.host} is in use: pass --port (make ui UI_ARGS='--port N')")
        env = dict(os.environ)
        env.pop("MLFLOW_TRACKING_URI", None)  # the server's store is the command line's, not a client setting
        # The server's background job runner starts eight more processes; nothing here submits jobs.
        env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
        # A session of its own: `stop` reaches uvicorn and its worker with one signal, whoever stops this command.
        return subprocess.Popen(self.command(), env=env, stdin=subprocess.DEVNULL, start_new_session=True)

    def wait_until_ready(self, process: subprocess.Popen, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while not self.is_healthy():
            if process.poll() is not None:
                raise UserInputError(f"mlflow server on {self.url} exited while starting (its output is above)")
            if time.monotonic() > deadline:
                raise UserInputError(f"mlflow server on {self.url} was not ready after {timeout:.0f} s")
            time.sleep(0.5)

    def is_healthy(self) -> bool:
        return answers_health(self.url)


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no obstacle
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def stop(process: subprocess.Popen, timeout: float = 15) -> None:
    """Stop the server's whole process group (`mlflow server`, uvicorn, its worker); SIGKILL after `timeout`."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):  # gone already
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout)
            return
        except subprocess.TimeoutExpired:
            continue
