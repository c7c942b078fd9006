"""`make ui` on a store of this machine: `python -m lifecycle.ui` starts `mlflow server` with the project's app
plugin (found through its entry-point metadata), says where the experiment's training runs are, serves MLflow's
page with the defaults script ahead of the UI's own code, and takes the server down when it is stopped. What a
browser then does with the page is tested in Chromium against the team server (tests/team/test_ui_in_browser.py),
which serves the same page behind basic-auth."""

from __future__ import annotations

import importlib.metadata
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.request

import mlflow
import pytest

from common.errors import UserInputError
from common.tracking import training_runs_url
from lifecycle.team.processes import free_port
from lifecycle.ui.app import APP, APP_WITH_BASIC_AUTH, create_app, create_app_with_basic_auth
from lifecycle.ui.browser_defaults import HELD_OUT_METRICS, WORKFLOW_TYPE_KEY, metric_column
from lifecycle.ui.local_server import LocalServer, ui_command
from tests.helpers import REPO, job_env


def test_mlflow_finds_the_apps_by_their_entry_points():
    ours = {APP, APP_WITH_BASIC_AUTH}
    apps = {
        entry.name: entry.load() for entry in importlib.metadata.entry_points(group="mlflow.app") if entry.name in ours
    }
    assert apps == {APP: create_app, APP_WITH_BASIC_AUTH: create_app_with_basic_auth}


def test_the_quickstart_names_the_command_for_its_store(monkeypatch, tmp_path):
    monkeypatch.chdir(REPO)  # where `mlflow run .` keeps the default store
    assert ui_command("sqlite:///mlflow.db") == "make ui"
    monkeypatch.chdir(tmp_path)
    assert (
        ui_command("sqlite:///mlflow.db")
        == f"MLFLOW_TRACKING_URI=sqlite:///{tmp_path}/mlflow.db python -m lifecycle.ui"
    )
    assert ui_command("http://127.0.0.1:5000") == "MLFLOW_TRACKING_URI=http://127.0.0.1:5000 python -m lifecycle.ui"


def test_a_port_another_program_holds_is_refused_in_one_line(settings):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(UserInputError, match=rf"^port {port} on 127.0.0.1 is in use: pass --port"):
            LocalServer(settings.tracking_uri, port=port).start()


def test_make_ui_serves_the_store_on_the_training_runs_with_the_defaults_and_stops_with_its_server(settings, client):
    experiment_id = client.create_experiment("model-lifecycle")
    port = free_port()
    env = job_env(settings.tracking_uri, {"MLFLOW_EXPERIMENT_NAME": "model-lifecycle"})
    command = [sys.executable, "-m", "lifecycle.ui", "--port", str(port), "--no-browser"]
    ui = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        printed = _lines_until(ui, "Ctrl-C stops the server.", timeout=180)
        url = f"http://127.0.0.1:{port}"
        assert printed[-3:] == [
            f"MLflow UI      {url}  (store {settings.tracking_uri})",
            f"training runs  {training_runs_url(url, experiment_id)}",
            "Ctrl-C stops the server.",
        ]
        with urllib.request.urlopen(f"{url}/", timeout=30) as answer:
            page = answer.read().decode()
        defaults = page.index("spark-model-lifecycle: the UI's defaults")
        assert defaults < page.index("</head>")
        assert re.search(r'<script defer="defer" src="static-files/static/js/main\.\w+\.js">', page)  # runs after
        assert WORKFLOW_TYPE_KEY in page
        assert all(metric_column(name) in page for name in HELD_OUT_METRICS)
        assert mlflow.MlflowClient(url).get_experiment(experiment_id).name == "model-lifecycle"
    finally:
        ui.send_signal(signal.SIGTERM)  # as a service manager stops it; Ctrl-C is SIGINT to the whole group
        ui.wait(timeout=60)
    assert ui.returncode == 0
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "the server outlived the command"


def _lines_until(process: subprocess.Popen, last: str, timeout: float) -> list[str]:
    """The process's output lines up to `last`, read in a thread so that a server that never says it fails the
    test after `timeout` instead of hanging it."""
    lines: list[str] = []
    done = threading.Event()

    def read() -> None:
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if lines[-1] == last:
                done.set()
                return

    threading.Thread(target=read, daemon=True).start()
    assert done.wait(timeout), f"no {last!r} after {timeout:.0f} s; printed: {lines}"
    return lines
