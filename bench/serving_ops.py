"""Serving as operations run it, every figure of one run: 64 concurrent single-row clients on a scikit-learn
gradient-boosted model (100 trees), our server with its batcher on and off, and `mlflow models serve`; what a
Prometheus scrape of /metrics costs single-row latency; 10,000 requests at concurrency 16 through a SIGTERM and
restart of a two-worker server (bench.serving_drain); the swap latency after an alias move in team mode, webhook vs
polling, 10 promotions each (bench.serving_swaps).

    python -m bench.serving_ops                 # 6,000 requests per measurement
    python -m bench.serving_ops --quick         # 2,000; 2,000 through the restart; 3 promotions each
    python -m bench.serving_ops --workdir DIR   # keep DIR (store, logs); a second run trains nothing

Trains the model with `mlflow run . -e train_sklearn` in a throw-away store (bench.serving's helpers), starts each
server alone (one worker, loopback), warms it up, then measures over keep-alive connections (bench.http_load).
Prints one table of figures with their goals: batcher on / off (>= 3x requests/s, p99 <= 50 ms), single-row p50
with a scraper reading /metrics every 100 ms (<= 5 % more), the restart (0 failed among accepted requests), the
webhook swap (<= 2 s p50), and the load average the machine had while it ran.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import mlflow

from bench._common import print_table, workdir
from bench.http_load import LoadResult, percentile, run_load
from bench.serving import JSON, ModelSpec, Servers, single_row_bodies, train, wait_ready
from bench.serving_drain import describe, drain_and_restart
from bench.serving_swaps import DEFAULT_RELOAD_SECONDS, measure, report
from lifecycle.team.processes import StackError
from lifecycle.team.registry_only import team_registry

GBM = ModelSpec("gbm", "train_sklearn", "breast_cancer", "target",
                {"estimator": "gradient_boosting", "hyperparams": '{"n_estimators": 100}'})  # fmt: skip
CLIENTS = 64


def _measure(server, bodies: list[bytes], requests: int, concurrency: int) -> LoadResult:
    run_load(server.invocations, bodies, JSON, min(requests // 5, 500), concurrency)  # warm-up
    return run_load(server.invocations, bodies, JSON, requests, concurrency, 120)


def _scraping(base: str, stop: threading.Event) -> None:
    while not stop.wait(0.1):
        with urllib.request.urlopen(f"{base}/metrics", timeout=10) as answer:  # noqa: S310 - a local server
            answer.read()


class LoadAverage:
    """The machine's 1-minute load average, sampled every 10 s while the bench runs (a shared machine: say so)."""

    def __init__(self):
        self.samples = [os.getloadavg()[0]]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="load-average", daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(10):
            self.samples.append(os.getloadavg()[0])

    def stop(self) -> str:
        self._stop.set()
        mean = sum(self.samples) / len(self.samples)
        return f"mean {mean:.1f}, max {max(self.samples):.1f} over {len(self.samples)} samples ({os.cpu_count()} cores)"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    requests = 2_000 if args.quick else 6_000
    through_restart, promotions = (2_000, 3) if args.quick else (10_000, 10)
    load_average = LoadAverage()
    folder = args.workdir or workdir()
    folder.mkdir(parents=True, exist_ok=True)
    tracking_uri = f"sqlite:///{folder / 'mlflow.db'}"
    mlflow.set_tracking_uri(tracking_uri)
    if not mlflow.MlflowClient().search_registered_models(f"name = '{GBM.name}'"):
        train(GBM, tracking_uri, folder)
    bodies = single_row_bodies(GBM)
    uri = f"models:/{GBM.name}/1"
    results = {}
    with Servers(tracking_uri, folder) as servers:
        for label, start in (
            ("ours, batcher on", lambda: servers.ours(uri)),
            ("ours, batcher off", lambda: servers.ours(uri, extra=("--batching", "false"))),
            ("mlflow models serve", lambda: servers.mlflow(uri)),
        ):
            server = start()
            wait_ready(server)
            results[label] = _measure(server, bodies, requests, CLIENTS)
            if label == "ours, batcher on":
                results["c1"] = _measure(server, bodies, requests, 1)
                stop = threading.Event()
                scraper = threading.Thread(target=_scraping, args=(server.base, stop), daemon=True)
                scraper.start()
                results["c1 scraped"] = _measure(server, bodies, requests, 1)
                stop.set()
                scraper.join()
            servers.stop(server)
        restart = drain_and_restart(servers, uri, bodies, through_restart, 16)
        print(f"through SIGTERM and restart: {describe(restart)}", flush=True)
    swaps = _swap_latencies(folder, promotions)
    _print_tables(results, restart, swaps, promotions, load_average.stop(), requests)


def _swap_latencies(folder: Path, promotions: int) -> dict[str, list[float]] | None:
    folder.chmod(0o711)  # the registry's PostgreSQL runs as its own account and passes through here to its data
    try:
        with team_registry(Path(tempfile.mkdtemp(prefix="swaps-", dir=folder))) as registry:
            return measure(registry, folder, promotions, DEFAULT_RELOAD_SECONDS)
    except StackError as exc:  # no PostgreSQL here: the other figures stand
        print(f"swap latency not measured: {exc}", flush=True)
        return None


def _print_tables(results, restart, swaps, promotions: int, load_average: str, requests: int) -> None:
    rows = []
    for label in ("ours, batcher on", "ours, batcher off", "mlflow models serve"):
        r = results[label]
        rows.append([f"{label}, {CLIENTS} clients", r.ok, r.error_count, f"{r.requests_per_second:,.0f}",
                     f"{r.p50_ms:.1f}", f"{r.p99_ms:.1f}"])  # fmt: skip
    for label in ("c1", "c1 scraped"):
        r = results[label]
        rows.append([f"ours, 1 client{', /metrics every 100 ms' if 'scraped' in label else ''}", r.ok, r.error_count,
                     f"{r.requests_per_second:,.0f}", f"{r.p50_ms:.2f}", f"{r.p99_ms:.2f}"])  # fmt: skip
    print_table(
        "single-row requests, gradient-boosted model (100 trees)",
        ["server", "ok", "errors", "requests/s", "p50 ms", "p99 ms"],
        rows,
    )
    if swaps:
        report(swaps, DEFAULT_RELOAD_SECONDS)
    on, off, theirs = (results[k] for k in ("ours, batcher on", "ours, batcher off", "mlflow models serve"))
    speed_up = on.requests_per_second / off.requests_per_second
    overhead = results["c1 scraped"].p50_ms / results["c1"].p50_ms - 1
    accepted_failed = restart.result.error_count
    figures = [
        [f"batcher on / off, {CLIENTS} clients", f"{speed_up:.2f}x requests/s", ">= 3x", _met(speed_up >= 3)],
        ["batcher on, p99", f"{on.p99_ms:.1f} ms", "<= 50 ms", _met(on.p99_ms <= 50)],
        ["batcher on / mlflow models serve", f"{on.requests_per_second / theirs.requests_per_second:.2f}x "
         "requests/s", "", ""],
        ["/metrics scraped every 100 ms: single-row p50", f"{overhead:+.1%}", "<= +5 %", _met(overhead <= 0.05)],
        [f"{restart.result.requests:,} requests, concurrency 16, SIGTERM + restart, 2 workers",
         f"{accepted_failed} failed, {restart.result.ok:,} answered; exit {restart.exit_code}",
         "0 failed, exit 0", _met(accepted_failed == 0 and restart.exit_code == 0)],
    ]  # fmt: skip
    if swaps:
        for label, latencies in swaps.items():
            answered = [s for s in latencies if s == s]
            p50 = percentile(answered, 50)
            goal = "<= 2 s" if label == "webhook" else ""
            figures.append([f"swap after an alias move, {label}, {len(latencies)} promotions (p50 / max)",
                            f"{p50:.2f} s / {max(answered, default=float('nan')):.2f} s", goal,
                            _met(p50 <= 2 and len(answered) == len(latencies)) if goal else ""])  # fmt: skip
    else:
        figures.append(["swap after an alias move, webhook vs polling", "not measured (no PostgreSQL)", "<= 2 s", ""])
    print_table("Figures", ["figure", "measured", "goal", "met"], figures)
    print(f"load average (1 min) during the run: {load_average}")
    print(f"({time.strftime('%Y-%m-%d %H:%M')}, {requests} requests per measurement, {promotions} promotions each)")


def _met(ok: bool) -> str:
    return "yes" if ok else "NO"


if __name__ == "__main__":
    main()
