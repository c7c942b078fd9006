"""Call the scoring server's real ASGI app in-process, without sockets: what the shapes matrix uses to ask every
trained model over REST in milliseconds (the end-to-end tests start the real server process instead)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


def call(
    app, method: str, path: str, body: bytes = b"", content_type: str | None = None, query: str = "", headers=None
) -> Reply:
    return asyncio.run(call_async(app, method, path, body, content_type, query, headers))


async def call_async(
    app,
    method: str,
    path: str,
    body: bytes = b"",
    content_type: str | None = None,
    query: str = "",
    extra_headers: dict[str, str] | None = None,
) -> Reply:
    """One request; several of them gathered on one event loop arrive at the app concurrently."""
    headers = [(b"content-length", str(len(body)).encode())]
    if content_type is not None:
        headers.append((b"content-type", content_type.encode()))
    headers += [(k.lower().encode(), v.encode()) for k, v in (extra_headers or {}).items()]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": headers,
        "server": ("testserver", 80),
        "client": ("testclient", 50000),
    }
    return await _call(app, scope, body)


async def _call(app, scope: dict, body: bytes) -> Reply:
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict] = []

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    headers = {k.decode().lower(): v.decode() for k, v in start.get("headers", [])}
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return Reply(start["status"], headers, content)


def post_json(app, document, query: str = "") -> Reply:
    return call(app, "POST", "/invocations", json.dumps(document).encode(), "application/json", query)
