"""`make team`'s stack itself: secrets generated into files only their owner reads, the `export` lines a user
sources, a second start that changes nothing, and a port another program holds refused before anything starts."""

from __future__ import annotations

import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from lifecycle.team.processes import StackError, free_port
from lifecycle.team.stack import StackConfig, TeamStack
from tests.helpers import REPO


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_secrets_are_private_and_the_env_file_reads_the_password_when_sourced(team):
    password = team.env()["MLFLOW_TRACKING_PASSWORD"]
    assert len(password) >= 24  # generated, never a default
    for secret in (team.env_path, team.server.admin_password_path, team.postgres.pgpass_path,
                   team.server.root / "flask-secret-key", team.postgres.root / "password"):  # fmt: skip
        assert _mode(secret) == 0o600, secret
    assert _mode(team.directory) == 0o711  # PostgreSQL's account passes through; nobody lists it
    assert password not in team.env_path.read_text()
    names = ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "SPARK_MASTER")
    script = f"source {team.env_path} && printf '%s\\n' " + " ".join(f'"${name}"' for name in names)
    printed = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout.splitlines()
    assert printed == [team.env()[n] for n in names]


def test_a_second_start_leaves_the_running_stack_as_it_is(team):
    pids = {p: p.read_text() for p in (team.server.pid_path, team.spark.root / "master.pid")}
    started = subprocess.run([sys.executable, "-m", "lifecycle.team", "start", "--dir", str(team.directory)],
                             cwd=REPO, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert started.returncode == 0, started.stderr
    assert f"source {team.env_path}" in started.stdout and 'MLFLOW_TRACKING_PASSWORD="$(cat ' in started.stdout
    assert {p: p.read_text() for p in pids} == pids
    status = subprocess.run([sys.executable, "-m", "lifecycle.team", "status", "--dir", str(team.directory)],
                            cwd=REPO, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert status.stdout.splitlines() == [
        "PostgreSQL: running", "mlflow server: running", "Spark: running", "Spark Connect: running"
    ]  # fmt: skip


def test_a_port_in_use_stops_the_start_before_anything_starts(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        others = {name: free_port() for name in StackConfig().ports() if name != "mlflow_port"}
        stack = TeamStack(tmp_path / "stack", StackConfig(mlflow_port=taken, **others))
        with pytest.raises(StackError, match=rf"in use on 127\.0\.0\.1: mlflow port {taken}; choose others with"):
            stack.start()
    assert not (tmp_path / "stack" / "postgres").exists()
