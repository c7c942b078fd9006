"""Serving under many clients: 64 concurrent single-row clients on a scikit-learn gradient-boosted model (100 trees),
our server with its batcher on and off, and `mlflow models serve`; and what a Prometheus scrape of /metrics costs
single-row latency.

    python -m bench.serving_ops                 # 6,000 requests per measurement
    python -m bench.serving_ops --quick         # 2,000
    python -m bench.serving_ops --workdir DIR   # keep DIR (store, logs); a second run trains nothing

Trains the model with `mlflow run . -e train_sklearn` in a throw-away store (bench.serving's helpers), starts each
server alone (one worker, loopback), warms it up, then measures over keep-alive connections (bench.http_load).
Prints one table: requests/s and p99 side by side, the ratio batcher on / off (goal >= 3x, p99 <= 50 ms), and the
single-row p50 at concurrency 1 without and with a scraper reading /metrics every 100 ms (goal: <= 5 % more).
"""

from __future__ import annotations

import argparse
import threading
import time
import urllib.request
from pathlib import Path

import mlflow

from bench._common import print_table, workdir
from bench.http_load import LoadResult, run_load
from bench.serving import JSON, ModelSpec, Servers, single_row_bodies, train, wait_ready

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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    requests = 2_000 if args.quick else 6_000
    folder = args.workdir or workdir()
    folder.mkdir(parents=True, exist_ok=True)
    tracking_uri = f"sqlite:///{folder / 'mlflow.db'}"
    mlflow.set_tracking_uri(tracking_uri)
    if not mlflow.MlflowClient().search_registered_models(f"name = '{GBM.name}'"):
        train(GBM, tracking_uri, folder)
    bodies = single_row_bodies(GBM)
    uri = f"models:/{GBM.name}/1"
    rows, results = [], {}
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
    on, off, theirs = (results[k] for k in ("ours, batcher on", "ours, batcher off", "mlflow models serve"))
    overhead = results["c1 scraped"].p50_ms / results["c1"].p50_ms - 1
    print(f"batcher on / off: {on.requests_per_second / off.requests_per_second:.2f}x requests/s (goal >= 3x); "
          f"p99 {on.p99_ms:.1f} ms (goal <= 50 ms)")  # fmt: skip
    print(f"batcher on / mlflow models serve: {on.requests_per_second / theirs.requests_per_second:.2f}x requests/s")
    print(f"/metrics scraped every 100 ms: single-row p50 {overhead:+.1%} (goal <= +5 %)")
    print(f"({time.strftime('%Y-%m-%d %H:%M')}, {requests} requests per measurement, work folder {folder})")


if __name__ == "__main__":
    main()
