"""Background processes of the team stack: started in a session of their own (so a stop reaches their children),
remembered by a pid file, waited for until they say they are ready."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path


class StackError(Exception):
    """A part of the stack could not be started or stopped; the message says which and where its log is."""


def start_daemon(
    command: Sequence[str],
    log_path: Path,
    pid_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            list(command), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True, cwd=cwd,
        )  # fmt: skip
    pid_path.write_text(str(process.pid))
    return process.pid


def running_pid(pid_path: Path) -> int | None:
    """The pid in `pid_path` if that process is still alive (a zombie child counts as gone)."""
    try:
        pid = int(pid_path.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)  # our own child: collect it if it has exited
        if reaped == pid:
            return None
    except ChildProcessError:
        pass  # not our child: started by an earlier `make team`
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


def stop_daemon(pid_path: Path, timeout: float = 30, sig: int = signal.SIGTERM) -> bool:
    """Signal the process group in `pid_path` and wait for its leader to go; SIGKILL after `timeout`.
    Returns whether anything was running."""
    pid = running_pid(pid_path)
    if pid is None:
        pid_path.unlink(missing_ok=True)
        return False
    _signal_group(pid, sig)
    deadline = time.monotonic() + timeout
    while running_pid(pid_path) is not None:
        if time.monotonic() > deadline:
            _signal_group(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
        time.sleep(0.2)
    pid_path.unlink(missing_ok=True)
    return True


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # gone already
        os.killpg(pid, sig)


def wait_until(ready: Callable[[], bool], what: str, log_path: Path, timeout: float, alive: Callable[[], bool]) -> None:
    """Poll `ready` until it holds; fail naming the part and its log when it exits or the time runs out."""
    deadline = time.monotonic() + timeout
    while not ready():
        if not alive():
            raise StackError(f"{what} exited while starting; its log: {log_path}\n{tail(log_path)}")
        if time.monotonic() > deadline:
            raise StackError(f"{what} was not ready after {timeout:.0f} s; its log: {log_path}\n{tail(log_path)}")
        time.sleep(0.3)


def log_says(log_path: Path, text: str, since: int = 0) -> bool:
    try:
        with log_path.open("rb") as log:
            log.seek(since)
            return text.encode() in log.read()
    except OSError:
        return False


def log_size(log_path: Path) -> int:
    try:
        return log_path.stat().st_size
    except OSError:
        return 0


def tail(log_path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]
