"""Opportunistic batching: requests that arrive while the model is busy are predicted together by its next call.

A scikit-learn forest spends most of a one-row prediction on per-call overhead (input checks, a dispatch per tree),
so eight waiting rows cost little more than one; an MLlib pipeline without ONNX pays a Spark job per call, so
concurrent requests share one job. Nothing waits on purpose: an idle model predicts a request at once, so a lone
client sees no added latency. Predictions run in a thread, so the event loop keeps reading the next requests
meanwhile (tree predictions release the GIL).

A batch goes to one version (requests hold the version they started with). If a batch's prediction fails, each of
its requests is predicted alone, so only a request that fails by itself gets the error.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from scoring.serving.prediction_backends import Prediction
from scoring.serving.served_model import ServedModel
from scoring.serving.signature_columns import Rows

MAX_BATCH_ROWS = 10_000  # rows predicted in one call at most; a single larger request still goes whole


@dataclass
class _Waiting:
    served: ServedModel
    rows: Rows
    probability: bool
    answer: asyncio.Future


class Batcher:
    def __init__(
        self, max_rows: int = MAX_BATCH_ROWS, on_batch: Callable[[int, int], None] | None = None, enabled: bool = True
    ):
        """`on_batch(requests, rows)` is told of every prediction call (the server's metrics). Not `enabled`: each
        request is predicted alone in a thread (serve's `batching=false`, for comparison)."""
        self._max_rows = max_rows
        self._enabled = enabled
        self._on_batch = on_batch or (lambda requests, rows: None)
        self._queue: deque[_Waiting] = deque()
        self._draining = False

    async def predict(self, served: ServedModel, rows: Rows, probability: bool) -> Prediction:
        served.check(rows, probability)  # a client's mistake is answered now, never fails a batch
        if not served.batches:
            self._on_batch(1, rows.n_rows)
            return served.backend.predict(rows, probability)  # microseconds: on the loop, no thread hand-off
        if not self._enabled:
            self._on_batch(1, rows.n_rows)
            return await asyncio.to_thread(served.backend.predict, rows, probability)
        waiting = _Waiting(served, rows, probability, asyncio.get_running_loop().create_future())
        self._queue.append(waiting)
        if not self._draining:
            self._draining = True
            asyncio.get_running_loop().create_task(self._drain())
        return await waiting.answer

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = self._next_batch()
                self._on_batch(len(batch), sum(w.rows.n_rows for w in batch))
                outcomes = await asyncio.to_thread(_predict_together, batch)
                for waiting, outcome in zip(batch, outcomes, strict=True):
                    if isinstance(outcome, BaseException):
                        waiting.answer.set_exception(outcome)
                    else:
                        waiting.answer.set_result(outcome)
        finally:
            self._draining = False

    def _next_batch(self) -> list[_Waiting]:
        """The oldest request, and those behind it for the same version, up to the row limit."""
        first = self._queue.popleft()
        batch, rows = [first], first.rows.n_rows
        while (
            self._queue
            and self._queue[0].served is first.served
            and rows + self._queue[0].rows.n_rows <= self._max_rows
        ):
            waiting = self._queue.popleft()
            batch.append(waiting)
            rows += waiting.rows.n_rows
        return batch


def _predict_together(batch: list[_Waiting]) -> list[Prediction | BaseException]:
    if len(batch) == 1:
        return [_predict_alone(batch[0])]
    backend = batch[0].served.backend
    probability = any(w.probability for w in batch)
    try:
        together = backend.predict(Rows.concat([w.rows for w in batch]), probability)
    except Exception:  # noqa: BLE001 - find the request(s) that fail by themselves
        return [_predict_alone(w) for w in batch]
    answers, start = [], 0
    for waiting in batch:
        end = start + waiting.rows.n_rows
        wanted = together.probability[start:end] if waiting.probability else None
        answers.append(Prediction(together.values[start:end], wanted))
        start = end
    return answers


def _predict_alone(waiting: _Waiting) -> Prediction | BaseException:
    try:
        return waiting.served.backend.predict(waiting.rows, waiting.probability)
    except Exception as exc:  # noqa: BLE001 - handed to the request's own answer
        return exc
