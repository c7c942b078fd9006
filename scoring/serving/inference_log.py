"""The inference log of the scoring server: every answered request's rows, its predictions (and probabilities when
the model is a classifier), the version that answered, the request id and the scoring time, written as Parquet in the
columns batch scoring writes (features, `prediction`, `probability`, `model_name`, `model_version`) plus `request_id`
and `scored_at` (UTC), so `monitor` reads it like score_batch's output.

Why a queue and a thread: a request must never wait for, nor fail on, the log. A request hands its rows to a bounded
in-memory queue and returns; a writer thread turns what queued into one file per version every `flush_rows` rows or
`flush_seconds`. When the queue is full the rows are dropped and counted (shown on /health and /metrics), never
blocked on. Each file is written under a hidden temporary name and renamed when complete, so a reader never sees half
a file; names carry the start time and the process id, so several worker processes share one folder safely.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

_logger = logging.getLogger(__name__)

SCORED_AT = "scored_at"
REQUEST_ID = "request_id"
_TIME_TYPE = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class LoggedRequest:
    """One answered request, as it is queued: the bound input columns and what the model said."""

    columns: dict[str, np.ndarray]
    n_rows: int
    predictions: list
    probability: list | None
    model_name: str | None
    model_version: str | None
    request_id: str
    scored_at: datetime

    @classmethod
    def of(cls, rows, prediction, served, request_id: str | None) -> LoggedRequest:
        """A request just answered: `rows` (request_body.Rows), the `prediction` and the version that made it."""
        return cls(rows.columns, rows.n_rows, prediction.values, prediction.probability, served.name, served.version,
                   request_id or "", datetime.now(UTC))  # fmt: skip


class InferenceLog:
    def __init__(
        self,
        folder: str | Path,
        flush_rows: int = 10_000,
        flush_seconds: float = 5.0,
        queue_rows: int = 100_000,
        on_dropped: Callable[[int], None] | None = None,
    ):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._flush_rows, self._flush_seconds, self._queue_rows = flush_rows, flush_seconds, queue_rows
        self.on_dropped = on_dropped
        self._ready = threading.Condition()
        self._queued: list[LoggedRequest] = []
        self._queued_rows = 0
        self._closing = False
        self._thread: threading.Thread | None = None
        self._write_lock = threading.Lock()  # close() and the thread may both write: one at a time
        self._prefix = f"part-{datetime.now(UTC):%Y%m%dT%H%M%S}-{os.getpid()}"
        self._sequence = 0
        self.rows_written = self.rows_dropped = self.files_written = 0

    def submit(self, entry: LoggedRequest) -> bool:
        """Queue a request's rows, or drop and count them when the queue is full: never blocks on the writer."""
        with self._ready:
            if self._closing or self._queued_rows + entry.n_rows > self._queue_rows:
                self.rows_dropped += entry.n_rows
                dropped = True
            else:
                self._queued.append(entry)
                self._queued_rows += entry.n_rows
                dropped = False
                if self._queued_rows >= self._flush_rows:
                    self._ready.notify()
        if dropped and self.on_dropped is not None:
            self.on_dropped(entry.n_rows)
        return not dropped

    def status(self) -> dict:
        return {
            "folder": str(self.folder),
            "rows_written": self.rows_written,
            "rows_queued": self._queued_rows,
            "rows_dropped": self.rows_dropped,
            "files_written": self.files_written,
        }

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="inference-log", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop taking rows and write everything queued (the server is shutting down)."""
        with self._ready:
            self._closing = True
            self._ready.notify()
        if self._thread is not None:
            self._thread.join()
        self.flush()

    def flush(self) -> None:
        with self._ready:
            taken, self._queued, self._queued_rows = self._queued, [], 0
        if taken:
            self._write(taken)

    def _run(self) -> None:
        deadline = time.monotonic() + self._flush_seconds
        while True:
            with self._ready:
                self._ready.wait_for(
                    lambda: self._closing or self._queued_rows >= self._flush_rows,
                    timeout=max(0.0, deadline - time.monotonic()),
                )
                closing = self._closing
            if closing:
                return  # close() writes what is left
            self.flush()
            deadline = time.monotonic() + self._flush_seconds

    def _write(self, entries: list[LoggedRequest]) -> None:
        """One file per version (versions may differ in columns and types), each renamed into place when whole."""
        by_version: dict[tuple, list[LoggedRequest]] = {}
        for entry in entries:
            by_version.setdefault((entry.model_name, entry.model_version), []).append(entry)
        with self._write_lock:
            for group in by_version.values():
                rows = sum(e.n_rows for e in group)
                try:
                    table = pa.concat_tables([_table(e) for e in group], promote_options="permissive")
                    self._sequence += 1
                    name = f"{self._prefix}-{self._sequence:06d}.parquet"
                    temporary = self.folder / f".{name}.tmp"  # readers skip names starting with "."
                    pq.write_table(table, temporary)
                    os.replace(temporary, self.folder / name)
                except Exception:  # noqa: BLE001 - a log that cannot be written must not stop the server
                    _logger.exception("inference log: %d row(s) could not be written to %s", rows, self.folder)
                    self.rows_dropped += rows
                    if self.on_dropped is not None:
                        self.on_dropped(rows)
                    continue
                self.rows_written += rows
                self.files_written += 1


def _table(entry: LoggedRequest) -> pa.Table:
    columns = {name: pa.array(values, from_pandas=True) for name, values in entry.columns.items()}
    columns["prediction"] = pa.array(entry.predictions)
    if entry.probability is not None:
        columns["probability"] = pa.array(entry.probability, type=_probability_type(entry.probability))
    n = entry.n_rows
    columns["model_name"] = pa.array([entry.model_name] * n, type=pa.string())
    columns["model_version"] = pa.array([entry.model_version] * n, type=pa.string())
    columns[REQUEST_ID] = pa.array([entry.request_id] * n, type=pa.string())
    columns[SCORED_AT] = pa.array([entry.scored_at] * n, type=_TIME_TYPE)
    return pa.table(columns)


def _probability_type(probability: list) -> pa.DataType:
    """As batch scoring writes it: a double for two classes, an array of doubles (one per class) otherwise."""
    return pa.list_(pa.float64()) if probability and isinstance(probability[0], list) else pa.float64()
