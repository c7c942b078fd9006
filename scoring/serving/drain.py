"""Graceful drain on SIGTERM, as a load balancer needs it: the server first says it is not ready (/health and
/v2/health/ready answer 503) while it keeps answering for `drain_seconds`, so the balancer has time to notice and
send new requests elsewhere; then it stops accepting connections, lets the requests in flight finish, writes what the
inference log still holds, and exits 0.

How: uvicorn handles SIGTERM by stopping at once. When the app starts (in each worker process, on its main thread,
after uvicorn installed its own handler) the handler is wrapped: the first SIGTERM starts the drain and, after the
deadline, asks uvicorn's server to exit the way its own handler does (without re-raising the signal, so the exit
code is 0). A second SIGTERM stops at once. With several workers, uvicorn's parent passes SIGTERM to each worker and
waits for them.

While draining, every answer says `Connection: close`: a client on a kept-alive connection opens a new one for its
next request, which the balancer sends to a ready server. Without it, the connections still open at the deadline
would be closed under clients that may be writing their next request at that moment.
"""

from __future__ import annotations

import logging
import signal
import threading

from starlette.middleware import Middleware

from scoring.serving.request_id import current_request_id

_logger = logging.getLogger(__name__)


class Drain:
    def __init__(self, seconds: float):
        self.seconds = seconds
        self.draining = False
        self._server = None

    def install(self) -> None:
        """Wrap uvicorn's SIGTERM handler; does nothing where the app is not run by a uvicorn server (in-process
        tests) or off the main thread."""
        if threading.current_thread() is not threading.main_thread():
            return
        previous = signal.getsignal(signal.SIGTERM)
        server = getattr(previous, "__self__", None)
        if server is None or not hasattr(server, "should_exit"):
            return
        self._server = server
        signal.signal(signal.SIGTERM, self._on_sigterm)

    def begin(self) -> None:
        """Not ready from now on; stop accepting connections after the deadline."""
        self.draining = True
        if self._server is not None:
            timer = threading.Timer(self.seconds, self._stop)
            timer.daemon = True
            timer.start()

    def _on_sigterm(self, signum, frame) -> None:
        # The handler interrupts whatever the main thread runs: its lines belong to no request.
        token = current_request_id.set(None)
        try:
            self._handle_sigterm()
        finally:
            current_request_id.reset(token)

    def _handle_sigterm(self) -> None:
        if self.draining:
            _logger.warning("second SIGTERM: stopping now")
            self._stop()
            return
        _logger.warning(
            "SIGTERM: not ready from now on; answering for %g s more, then refusing new connections and finishing "
            "the requests in flight", self.seconds,
        )  # fmt: skip
        self.begin()

    def _stop(self) -> None:
        self._server.should_exit = True

    def closing(self) -> Middleware:
        """The app's middleware that closes each connection after its answer while draining."""
        return Middleware(CloseConnectionsWhileDraining, drain=self)


class CloseConnectionsWhileDraining:
    """ASGI middleware: while `drain.draining`, each answer closes its connection (`Connection: close`)."""

    def __init__(self, app, drain: Drain):
        self.app, self.drain = app, drain

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_closing(message):
            if message["type"] == "http.response.start" and self.drain.draining:
                message["headers"] = [*message.get("headers", []), (b"connection", b"close")]
            await send(message)

        await self.app(scope, receive, send_closing)
