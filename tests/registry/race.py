"""Promotions as processes of their own, forked from one prepared process (multiprocessing's forkserver imports
MLflow and the registry once): each runs `python -m registry.promote`'s `main` with its own connections and its own
process id, without paying a Python and MLflow start every time. In the child, a wrapper around the real lock
records when the promotion held it (its critical section), by the system-wide monotonic clock."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# What a promotion imports, up front and once: the job, and what MLflow imports at its first call to a store.
_PRELOAD = ["registry.promote", "mlflow.store.tracking.sqlalchemy_store", "mlflow.store.tracking.rest_store",
            "mlflow.store.model_registry.sqlalchemy_store", "mlflow.store.model_registry.rest_store",
            "alembic.command", "sqlalchemy.dialects.sqlite", "git", "tests.registry.race"]  # fmt: skip


@dataclass(frozen=True)
class Outcome:
    code: int | None  # None: killed
    out: str
    err: str
    held: tuple[float, float] | None  # (start, end) of the critical section; None if it never held the lock
    version: str

    @property
    def last_line(self) -> str:
        lines = self.err.strip().splitlines()
        return lines[-1] if lines else ""


@dataclass(frozen=True)
class Promotion:
    """One promotion process: its job arguments and environment; `lock_ttl_s` shortens the lock's time to live;
    `stop_before_move` makes it wait, lock held and run open, until it is killed."""

    version: str
    env: dict[str, str]
    workdir: Path
    model: str = "race"
    reason: str = "race"
    lock_ttl_s: float | None = None
    stop_before_move: bool = False

    def argv(self) -> list[str]:
        return ["--model-name", self.model, "--stage", "production", "--version", self.version, "--force", "true",
                "--reason", self.reason]  # fmt: skip


class Race:
    """Starts promotion processes from the prepared process; leaving the `with` block kills any still running (a
    failed or timed-out test must not leave a holder of the lock behind for the next test)."""

    def __init__(self):
        self._ctx = multiprocessing.get_context("forkserver")
        self._ctx.set_forkserver_preload(_PRELOAD)
        self._started: list[Started] = []

    def start(self, promotion: Promotion, name: str) -> Started:
        started = Started(self._ctx, promotion, name)
        self._started.append(started)
        return started

    def run_concurrently(self, promotions: list[Promotion], tag: str) -> list[Outcome]:
        started = [self.start(p, f"{tag}-{i}") for i, p in enumerate(promotions)]
        return [s.finish() for s in started]

    def __enter__(self) -> Race:
        return self

    def __exit__(self, *exc) -> None:
        for started in self._started:
            if started.process.is_alive():
                started.kill()
                started.process.join()


class Started:
    def __init__(self, ctx, promotion: Promotion, name: str):
        self.promotion = promotion
        self.files = {key: promotion.workdir / f"{name}.{key}" for key in ("out", "err", "held", "stopped")}
        self.process = ctx.Process(target=_child, args=(promotion, self.files), name=name)
        self.process.start()

    def wait_until_stopped_before_move(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not self.files["stopped"].exists():
            assert self.process.is_alive() and time.monotonic() < deadline, self._read("err")[-3000:]
            time.sleep(0.05)

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)

    def finish(self, timeout: float = 300) -> Outcome:
        self.process.join(timeout)
        assert self.process.exitcode is not None, f"promotion of version {self.promotion.version} did not end"
        held = json.loads(self._read("held") or "null")
        code = None if self.process.exitcode == -signal.SIGKILL else self.process.exitcode
        return Outcome(code, self._read("out"), self._read("err"), tuple(held) if held else None,
                       self.promotion.version)  # fmt: skip

    def _read(self, name: str) -> str:
        path = self.files[name]
        return path.read_text() if path.exists() else ""


def _child(promotion: Promotion, files: dict[str, Path]) -> None:
    """In the forked process: the environment and output files of a job started by hand, then the job's main."""
    import registry.promote
    import registry.promotion
    from common.cli import run_cli

    os.environ.clear()
    os.environ.update(promotion.env)
    os.chdir(promotion.workdir)
    for fd, name in ((1, "out"), (2, "err")):
        target = os.open(files[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
    real_lock, real_move = registry.promotion.promotion_lock, registry.promotion.promote

    @contextmanager
    def recorded_lock(client, model, what, ttl_s):
        with real_lock(client, model, what, promotion.lock_ttl_s or ttl_s) as holder:
            start = time.monotonic()
            try:
                yield holder
            finally:
                files["held"].write_text(json.dumps([start, time.monotonic()]))

    def stopping_move(*args, **kwargs):
        files["stopped"].touch()
        time.sleep(3600)  # until the test kills this process
        return real_move(*args, **kwargs)

    registry.promotion.promotion_lock = recorded_lock
    if promotion.stop_before_move:
        registry.promotion.promote = stopping_move
    try:
        run_cli(registry.promote.main, promotion.argv())
        code = 0
    except SystemExit as exited:
        code = exited.code if isinstance(exited.code, int) else 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # no atexit handlers of the prepared process


def check_round(client, outcomes: list[Outcome], model: str = "race") -> list[Outcome]:
    """What every race must end with: no traceback; the promotions that held the lock never held it at the same
    time; every other one refused in one line, having held nothing; exactly one Production version, the last
    winner's, and its alias agreeing; no lock left. Returns the winners."""
    from mlflow.exceptions import MlflowException

    from registry.lock import lock_name
    from tests.registry.conftest import state

    assert not [o for o in outcomes if "Traceback" in o.err], next(o.err for o in outcomes if "Traceback" in o.err)
    winners = [o for o in outcomes if o.code == 0]
    assert winners, [o.err[-2000:] for o in outcomes]
    refusal = f"error: not promoted: another promotion of {model} is in progress ("
    losers = [(o.code, o.last_line, o.held) for o in outcomes if o.code != 0]
    assert all(code == 2 and line.startswith(refusal) and held is None for code, line, held in losers), losers
    spans = sorted(o.held for o in winners)
    assert all(earlier[1] < later[0] for earlier, later in zip(spans, spans[1:], strict=False)), spans
    last = max(winners, key=lambda o: o.held[1]).version
    versions, aliases = state(client, model)
    assert ([v for v, stage in versions.items() if stage == "Production"], aliases) == ([last], {"production": last})
    try:
        client.get_registered_model(lock_name(model))
        raise AssertionError(f"{lock_name(model)} is still there after every promotion ended")
    except MlflowException as exc:
        assert exc.error_code == "RESOURCE_DOES_NOT_EXIST"
    return winners
