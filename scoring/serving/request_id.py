"""`X-Request-Id`: one id per request, taken from the client (or the proxy in front) or made here, returned on the
answer, added to every log line written while the request is handled and to its rows in the inference log, so one
request can be followed from the load balancer's log to the model's answer.

A client's id is taken only when it is short printable text (letters, digits and `-_.:`, up to 128 characters):
anything else would let a client write arbitrary text into the server's log lines, so it is replaced by a new id.
"""

from __future__ import annotations

import contextvars
import logging
import re
import uuid

HEADER = "x-request-id"
_ACCEPTED = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

current_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


def request_id_from(header: str | None) -> str:
    if header is not None and _ACCEPTED.fullmatch(header):
        return header
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """ASGI middleware: sets the request's id for the handler (and the log lines it causes), returns it."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v.decode("latin-1") for k, v in scope["headers"] if k.lower() == HEADER.encode()), None)
        request_id = request_id_from(given)
        token = current_request_id.set(request_id)

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (HEADER.encode(), request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            current_request_id.reset(token)


class RequestIdLogFilter(logging.Filter):
    """Ends each log line written while a request is handled with `[request_id=...]` (the id holds no `%`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = current_request_id.get()
        if request_id is not None and not getattr(record, "request_id", None):
            record.request_id = request_id
            record.msg = f"{record.msg} [request_id={request_id}]"
        return True


def tag_log_lines() -> None:
    """Put the filter on the root logger's handlers (where every module's lines end up), once."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RequestIdLogFilter) for f in handler.filters):
            handler.addFilter(RequestIdLogFilter())
