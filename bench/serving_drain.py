"""A rolling restart under load: 10,000 single-row requests at concurrency 16 to our server with two worker
processes, which gets a SIGTERM early in the run and is started again on the same port once it has exited.

The client plays the load balancer in front: it checks `GET /v2/health/ready` every 100 ms and sends no new request
while the server is not ready (bench.http_load's `hold`); requests already sent go on. The server, told to drain,
turns not ready at once and keeps answering for `drain_seconds` (long enough for that check to notice), finishes what
is in flight, and exits 0. Goal: 0 failed among the requests the server accepted, and exit code 0.

Run from bench.serving_ops (the gradient-boosted model there), or alone on any registered model:

    python -m bench.serving_drain --tracking-uri sqlite:///DIR/mlflow.db --model-uri models:/gbm/1 --body row.json
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench.http_load import LoadResult, run_load
from bench.serving import JSON, Servers, wait_ready

READY_CHECK_SECONDS = 0.1


@dataclass
class DrainOutcome:
    result: LoadResult
    exit_code: int | None  # of the server that got SIGTERM
    signalled_at_s: float  # seconds after the load started
    not_ready_after_s: float  # from SIGTERM until the balancer's check saw the server not ready
    exited_after_s: float  # from SIGTERM until the process exited
    ready_again_after_s: float  # from SIGTERM until the restarted server was ready


class ReadinessCheck:
    """The balancer's health check, in a thread: `ready` is set while /v2/health/ready answers 200."""

    def __init__(self, base: str):
        self.url, self.ready, self._stop = f"{base}/v2/health/ready", threading.Event(), threading.Event()
        self.first_not_ready: float | None = None
        self._thread = threading.Thread(target=self._run, name="ready-check", daemon=True)

    def __enter__(self) -> ReadinessCheck:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._answers_ready():
                self.ready.set()
            else:
                if self.ready.is_set() and self.first_not_ready is None:
                    self.first_not_ready = time.perf_counter()
                self.ready.clear()
            self._stop.wait(READY_CHECK_SECONDS)

    def _answers_ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url, timeout=2) as answer:  # noqa: S310 - a local server
                return answer.status == 200
        except (OSError, urllib.error.URLError):
            return False


def drain_and_restart(
    servers: Servers,
    model_uri: str,
    bodies: list[bytes],
    requests: int = 10_000,
    concurrency: int = 16,
    drain_seconds: float = 2.0,
    signal_after_s: float = 2.0,
) -> DrainOutcome:
    extra = ("--drain-seconds", f"{drain_seconds:g}")
    server = servers.ours(model_uri, workers=2, extra=extra)
    wait_ready(server)
    with ReadinessCheck(server.base) as check:
        if not check.ready.wait(120):
            raise RuntimeError(f"{server.label} never answered /v2/health/ready:\n{server.log_tail()}")
        run_load(server.invocations, bodies, JSON, min(requests // 10, 500), concurrency)  # warm-up
        outcome: dict[str, LoadResult] = {}

        def send_all() -> None:
            held = lambda: not check.ready.is_set()  # noqa: E731 - the balancer's rotation, read by each request
            outcome["result"] = run_load(server.invocations, bodies, JSON, requests, concurrency, 60, hold=held)

        load = threading.Thread(target=send_all, name="drain-load", daemon=True)
        started = time.perf_counter()
        load.start()
        time.sleep(signal_after_s)
        signalled = time.perf_counter()
        server.process.send_signal(signal.SIGTERM)  # the uvicorn parent, as a process manager sends it
        exit_code = server.process.wait(drain_seconds + 60)
        exited = time.perf_counter()
        servers.stop(server)
        restarted = servers.ours(model_uri, workers=2, extra=extra, port=server.port)
        wait_ready(restarted)
        while not check.ready.is_set():
            time.sleep(0.01)
        ready_again = time.perf_counter()
        load.join()
        not_ready = (check.first_not_ready or float("nan")) - signalled
    if "result" not in outcome:
        raise RuntimeError("the load through the restart did not finish")
    return DrainOutcome(outcome["result"], exit_code, signalled - started, not_ready, exited - signalled,
                        ready_again - signalled)  # fmt: skip


def describe(outcome: DrainOutcome) -> str:
    result = outcome.result
    errors = ", ".join(f"{k}: {v}" for k, v in result.errors.most_common()) or "none"
    return (
        f"{result.ok:,}/{result.requests:,} answered 2xx, errors: {errors}; SIGTERM at {outcome.signalled_at_s:.1f} s, "
        f"seen not ready after {outcome.not_ready_after_s:.2f} s, exited {outcome.exit_code} after "
        f"{outcome.exited_after_s:.1f} s, restarted and ready after {outcome.ready_again_after_s:.1f} s"
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--model-uri", required=True)
    parser.add_argument("--body", required=True, help="a JSON file with one request body")
    parser.add_argument("--requests", type=int, default=10_000)
    args = parser.parse_args(argv)
    body = json.dumps(json.loads(Path(args.body).read_text())).encode()
    folder = Path(args.tracking_uri.removeprefix("sqlite:///")).parent
    with Servers(args.tracking_uri, folder) as servers:
        print(describe(drain_and_restart(servers, args.model_uri, [body], args.requests)))


if __name__ == "__main__":
    main()
