"""`GET /metrics`: what the people running the server watch, in Prometheus' text format (prometheus-client).

    serving_requests_total{endpoint, status}      requests answered, by endpoint and HTTP status code
    serving_request_seconds{endpoint}             latency histogram
    serving_request_rows                          rows per scoring request
    serving_batch_rows / serving_batch_requests   what the batcher predicted together (scoring.serving.batching)
    serving_model_info{model_name, model_version} 1 for the version this worker answers with (per worker: pid label)
    serving_swaps_total{outcome}                  registry swaps done / refused
    serving_inference_log_dropped_rows_total      rows the inference log dropped because its queue was full

Why multiprocess mode: with several uvicorn workers a scrape reaches one of them, which must still report all of
them. prometheus-client's multiprocess mode keeps each process's values in files under PROMETHEUS_MULTIPROC_DIR;
`serve` creates that folder fresh at every start (a folder left by an earlier run would add its counts) before any
worker starts, and a scrape sums the files. Without the variable (one process, or tests in-process) each app keeps
its own registry.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import values as prometheus_values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
ENDPOINTS = ("/invocations", "/ping", "/health", "/version", "/metrics")
_ROW_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 50_000)
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


def fresh_multiprocess_folder() -> Path:
    """A new, empty folder for this server start's metric files, named in the environment its workers inherit.
    A folder the operator named is emptied instead (counts of an earlier run must not add to this one's)."""
    given = os.environ.get(MULTIPROCESS_VARIABLE)
    if given:
        folder = Path(given)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    else:
        folder = Path(tempfile.mkdtemp(prefix="serve-metrics-"))
        os.environ[MULTIPROCESS_VARIABLE] = str(folder)
    return folder


def _multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROCESS_VARIABLE))


class ServerMetrics:
    def __init__(self):
        if _multiprocess():
            # The value class is chosen when prometheus_client is first imported; the folder may be named later.
            prometheus_values.ValueClass = prometheus_values.get_value_class()
            self._registry = None  # metrics live in files; each scrape reads them all
        else:
            self._registry = CollectorRegistry()
        own = {"registry": self._registry}
        self.requests = Counter("serving_requests", "Requests answered", ["endpoint", "status"], **own)
        self.latency = Histogram(
            "serving_request_seconds", "Time to answer a request", ["endpoint"], buckets=_LATENCY_BUCKETS, **own
        )
        self.request_rows = Histogram("serving_request_rows", "Rows per scoring request", buckets=_ROW_BUCKETS, **own)
        self.batch_rows = Histogram(
            "serving_batch_rows", "Rows predicted together by the batcher", buckets=_ROW_BUCKETS, **own
        )
        self.batch_requests = Histogram(
            "serving_batch_requests", "Requests predicted together by the batcher", buckets=_ROW_BUCKETS[:9], **own
        )
        self.model = Gauge(
            "serving_model_info", "1 for the version this worker answers with", ["model_name", "model_version"],
            multiprocess_mode="liveall", **own,
        )  # fmt: skip
        self.swaps = Counter("serving_swaps", "Registry swaps, done or refused", ["outcome"], **own)
        self.log_dropped = Counter(
            "serving_inference_log_dropped_rows", "Rows the inference log dropped (its queue was full)", **own
        )
        for outcome in ("done", "refused"):
            self.swaps.labels(outcome)  # shown as 0 before the first swap

    def answering(self, name: str | None, version: str | None, previous: tuple | None = None) -> None:
        if previous is not None:
            self.model.labels(*previous).set(0)
        self.model.labels(name or "", version or "").set(1)

    def observe_batch(self, requests: int, rows: int) -> None:
        self.batch_requests.observe(requests)
        self.batch_rows.observe(rows)

    def scrape(self) -> tuple[bytes, str]:
        if self._registry is not None:
            return generate_latest(self._registry), CONTENT_TYPE_LATEST
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST

    def worker_stopped(self) -> None:
        """This worker's 'answering' gauge goes with it (liveall gauges are read from live processes' files)."""
        if _multiprocess():
            mark_process_dead(os.getpid())


class MetricsMiddleware:
    """Counts every answer by endpoint and status, and times it, whatever the handler did."""

    def __init__(self, app, metrics: ServerMetrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        endpoint = scope["path"] if scope["path"] in ENDPOINTS or scope["path"].startswith("/v2/") else "other"
        endpoint = "/v2" if endpoint.startswith("/v2/") else endpoint
        started, status = time.perf_counter(), [500]

        async def send_counted(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        finally:
            self.metrics.requests.labels(endpoint, str(status[0])).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - started)
