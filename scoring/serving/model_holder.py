"""The version a server answers with, and how it follows the registry.

A stage or alias URI (`models:/titanic/production`, `models:/titanic@champion`, `.../latest`) is resolved again
every `reload_seconds`. When it names another version, that version is loaded in a background thread, checked
(its signature takes every request the serving version takes; it answers its own input example), and only then
swapped in, by replacing one reference: a request holds the version it started with until it is answered, so
none fails or mixes versions during a swap. A version that fails a check leaves the old one serving; the reason
is logged and shown on /health, and the version is tried again only after `_RETRY_SECONDS`.

A registry event (scoring.serving.registry_webhook) reaches one worker process of several: that worker writes a
stamp into the file all workers of the server share (`shared_events`), and every worker, looking at it every
`_SHARED_EVENT_SECONDS`, checks the registry at once when it changed, so all of them swap, not just the one the
delivery happened to reach.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mlflow

from common.model_uri import ResolvedModel, resolve_model_uri
from scoring.serving.request_body import first_line
from scoring.serving.served_model import ServedModel, load_served_model
from scoring.serving.signature_columns import InputColumn

_logger = logging.getLogger(__name__)
_RETRY_SECONDS = 300.0
_SHARED_EVENT_SECONDS = 0.2  # a stat and a read of a few bytes: nothing next to a request

Loader = Callable[[mlflow.MlflowClient, ResolvedModel], ServedModel]


@dataclass(frozen=True)
class FollowStatus:
    last_check: float | None = None  # epoch seconds of the last registry lookup
    error: str | None = None  # why the version the URI names now is not serving (None: it is)


def incompatible_inputs(serving: tuple[InputColumn, ...], candidate: tuple[InputColumn, ...]) -> list[str]:
    """What the candidate requires that a request made for the serving version may not send."""
    known = {column.name: column.type for column in serving}
    problems = []
    for column in candidate:
        if not column.required:
            continue
        if column.name not in known:
            problems.append(f"it requires column {column.name!r} ({column.type}), which clients do not send")
        elif known[column.name] != column.type:
            problems.append(f"column {column.name!r} changes type from {known[column.name]} to {column.type}")
    return problems


class ModelHolder:
    def __init__(
        self,
        model_uri: str,
        served: ServedModel,
        reload_seconds: float,
        loader: Loader = load_served_model,
        shared_events: Path | None = None,
    ):
        self.model_uri = model_uri
        self.current = served  # read by every request: one reference, replaced whole
        self.status = FollowStatus()
        self._reload_seconds = reload_seconds
        self._loader = loader
        self._failed: dict[str, float] = {}  # load_uri -> when it failed, so a broken version is not retried each poll
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._checking = threading.Lock()  # a poll and a registry event never load the same version twice at once
        self.event_thread: threading.Thread | None = None  # the last check started by a registry event
        self._shared_events = shared_events  # several workers: a file whose stamp changes on each registry event
        self._seen_event = self._event_stamp()
        # on_swap(outcome, previous, candidate), outcome "done" or "refused": the server's metrics
        self.on_swap: Callable[[str, ServedModel, ServedModel | None], None] = lambda *_: None

    @classmethod
    def load(
        cls,
        model_uri: str,
        reload_seconds: float,
        loader: Loader = load_served_model,
        shared_events: Path | None = None,
    ) -> ModelHolder:
        """Resolve and load now: a URI that does not resolve, or a version that does not load, raises a UserInputError
        (the entry point exits 2)."""
        client = mlflow.MlflowClient()
        served = loader(client, resolve_model_uri(client, model_uri))
        return cls(model_uri, served, reload_seconds, loader, shared_events)

    @property
    def follows(self) -> bool:
        """Whether the URI can come to name another version (a stage, an alias, latest), so is worth polling."""
        return self.current.resolved.load_uri != self.model_uri.strip().rstrip("/")

    def start_following(self) -> None:
        if not self.follows or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._follow, name="follow-registry", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _follow(self) -> None:
        step = self._reload_seconds if self._shared_events is None else min(self._reload_seconds, _SHARED_EVENT_SECONDS)
        next_poll = time.monotonic() + self._reload_seconds
        while not self._stop.wait(step):
            stamp = self._event_stamp()
            if stamp != self._seen_event or time.monotonic() >= next_poll:
                self._seen_event, next_poll = stamp, time.monotonic() + self._reload_seconds
                self.check_once()

    def check_soon(self) -> None:
        """A registry event says the URI may name another version: check now, off the request path, and tell the
        server's other workers to."""
        if self._shared_events is not None:
            self._shared_events.write_text(f"{time.time_ns()} {os.getpid()}")
            self._seen_event = self._event_stamp()  # this worker checks right here, not again at its next look
        self.event_thread = threading.Thread(target=self.check_once, name="registry-event", daemon=True)
        self.event_thread.start()

    def _event_stamp(self) -> str | None:
        try:
            return self._shared_events.read_text() if self._shared_events is not None else None
        except FileNotFoundError:
            return None

    def check_once(self) -> None:
        """One poll: resolve the URI; load, check and swap in the version it names when that is another one."""
        with self._checking:
            self._check()

    def _check(self) -> None:
        client = mlflow.MlflowClient()
        try:
            resolved = resolve_model_uri(client, self.model_uri)
        except Exception as exc:  # noqa: BLE001 - the registry is unreachable or the stage emptied: keep serving
            self._record(f"cannot resolve {self.model_uri}: {first_line(exc)}; still serving {self.current.label}")
            return
        if resolved.load_uri == self.current.resolved.load_uri:
            self._record(None)
            return
        failed_at = self._failed.get(resolved.load_uri)
        if failed_at is not None and time.time() - failed_at < _RETRY_SECONDS:
            self._record(self.status.error)
            return
        _logger.info("%s now names %s; loading it while %s serves", self.model_uri, resolved.label, self.current.label)
        try:
            candidate = self._loader(client, resolved)
            problems = incompatible_inputs(self.current.inputs, candidate.inputs)
            if problems:
                raise ValueError(f"its signature is not compatible with {self.current.label}: " + "; ".join(problems))
        except Exception as exc:  # noqa: BLE001 - any failure leaves the serving version in place
            self._failed[resolved.load_uri] = time.time()
            reason = exc.args[0] if exc.args else type(exc).__name__
            self._record(f"{resolved.label} was not swapped in: {reason}; still serving {self.current.label}")
            _logger.warning("%s", self.status.error)
            self.on_swap("refused", self.current, None)
            return
        previous, self.current = self.current, candidate
        self._failed.pop(resolved.load_uri, None)
        self._record(None)
        self.on_swap("done", previous, candidate)
        _logger.info("now serving %s (%s), was %s", candidate.label, candidate.how, previous.label)

    def _record(self, error: str | None) -> None:
        self.status = FollowStatus(last_check=time.time(), error=error)
