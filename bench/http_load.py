"""A small HTTP/1.1 load generator on asyncio streams: keep-alive connections, standard library only.

    from bench.http_load import run_load
    result = run_load("http://127.0.0.1:5001/invocations", body, "application/json", requests=2_000, concurrency=1)
    print(result.p50_ms, result.p99_ms, result.requests_per_second, result.errors, result.versions)

`concurrency` connections each send their requests one after another over one kept-alive connection, until
`requests` have been sent in all. A connection the server closes (`Connection: close`, or closed between two
requests) is opened again, and counted in `reconnects`. A request that gets no complete answer counts as an error by
kind: `status <code>` for a non-2xx answer, `connection: <exception>` when the connection fails or closes before
the answer is complete, `timeout` when the whole request takes longer than `timeout` seconds. The request is not
sent again. Latencies are of the 2xx answers only, from the first byte written to the last byte of the body read.

`hold` plays a load balancer's health check: while it returns true, no connection sends its next request (the
requests in flight go on); each waits and sends it when `hold` turns false. The time held counts in `seconds`.

Importing this module has no side effects. `run_load` calls `asyncio.run`; from a running event loop, await
`load` instead (same arguments).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

__all__ = ["LoadResult", "load", "percentile", "run_load"]

_VERSION_HEADER = b"x-model-version"
_NO_HEADER = "(none)"


@dataclass
class LoadResult:
    requests: int  # sent (or attempted)
    concurrency: int
    seconds: float  # wall time of the whole run
    latencies_ms: list[float] = field(default_factory=list)  # one per 2xx answer, in the order answered
    errors: Counter[str] = field(default_factory=Counter)  # "status 503", "connection: ConnectionResetError", "timeout"
    versions: Counter[str] = field(default_factory=Counter)  # X-Model-Version of the 2xx answers; "(none)" if absent
    first_seen_s: dict[str, float] = field(
        default_factory=dict
    )  # version -> seconds from the start to its first answer
    reconnects: int = 0  # connections opened again after the server closed one (or after an error)

    @property
    def ok(self) -> int:
        return len(self.latencies_ms)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def requests_per_second(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else float("nan")

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies_ms, 50)

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies_ms, 99)

    def summary(self) -> str:
        errors = ", ".join(f"{k}: {v}" for k, v in self.errors.most_common()) or "none"
        versions = ", ".join(f"{k}: {v}" for k, v in sorted(self.versions.items())) or "none"
        return (
            f"{self.ok:,}/{self.requests:,} ok at concurrency {self.concurrency} in {self.seconds:.1f} s, "
            f"{self.requests_per_second:,.0f} req/s, p50 {self.p50_ms:.2f} ms, p99 {self.p99_ms:.2f} ms; "
            f"errors: {errors}; reconnects: {self.reconnects}; versions: {versions}"
        )


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile by linear interpolation (NumPy's default); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def run_load(
    url: str,
    body: bytes | Sequence[bytes],
    content_type: str,
    requests: int,
    concurrency: int,
    timeout: float = 30.0,
    *,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    hold: Callable[[], bool] | None = None,
) -> LoadResult:
    """Send `requests` requests to `url` over `concurrency` kept-alive connections and measure the answers.

    `body` is sent with every request; a sequence of bodies is sent in turn (request i sends body i % len).
    `timeout` is per request, in seconds (connecting included)."""
    return asyncio.run(
        load(url, body, content_type, requests, concurrency, timeout, method=method, headers=headers, hold=hold)
    )


async def load(
    url: str,
    body: bytes | Sequence[bytes],
    content_type: str,
    requests: int,
    concurrency: int,
    timeout: float = 30.0,
    *,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    hold: Callable[[], bool] | None = None,
) -> LoadResult:
    """`run_load` as a coroutine, for callers already inside an event loop."""
    if requests < 0 or concurrency < 1 or timeout <= 0:
        raise ValueError("requests must be >= 0, concurrency >= 1 and timeout > 0")
    target = _Target.parse(url)
    bodies = [body] if isinstance(body, bytes | bytearray | memoryview) else list(body)
    if not bodies:
        raise ValueError("body: give at least one body")
    prefix = _request_head(target, method, content_type, headers)
    messages = [prefix + f"Content-Length: {len(b)}\r\n\r\n".encode("ascii") + bytes(b) for b in bodies]
    result = LoadResult(requests=requests, concurrency=concurrency, seconds=0.0)
    counter = iter(range(requests))
    started = time.perf_counter()
    connections = [_Connection(target, result, started) for _ in range(min(concurrency, max(requests, 1)))]
    try:
        await asyncio.gather(*(c.run(counter, messages, timeout, hold) for c in connections))
    finally:
        result.seconds = time.perf_counter() - started
        await asyncio.gather(*(c.aclose() for c in connections))
    return result


@dataclass(frozen=True)
class _Target:
    host: str
    port: int
    path: str
    host_header: str

    @classmethod
    def parse(cls, url: str) -> _Target:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"only http://host[:port]/path URLs are supported, got {url!r}")
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls(parts.hostname, parts.port or 80, path, parts.netloc)


def _request_head(target: _Target, method: str, content_type: str, headers: dict[str, str] | None) -> bytes:
    lines = [f"{method} {target.path} HTTP/1.1", f"Host: {target.host_header}", f"Content-Type: {content_type}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n").encode("latin-1")


class _ConnectionLost(Exception):
    """The connection closed before the answer was complete."""


class _Connection:
    """One keep-alive connection sending its requests one after another."""

    def __init__(self, target: _Target, result: LoadResult, started: float):
        self._target, self._result, self._started = target, result, started
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._opened = 0

    async def run(self, counter, messages: list[bytes], timeout: float, hold: Callable[[], bool] | None) -> None:
        for index in counter:  # a shared iterator: whichever connection is free takes the next request
            while hold is not None and hold():
                await asyncio.sleep(0.01)
            await self._one(messages[index % len(messages)], timeout)

    async def _one(self, message: bytes, timeout: float) -> None:
        result = self._result
        try:
            status, version, keep_alive, elapsed = await asyncio.wait_for(self._exchange(message), timeout)
        except TimeoutError:
            result.errors["timeout"] += 1
            self.close()  # the answer may still come: this connection cannot be reused
            return
        except _ConnectionLost as exc:
            result.errors[f"connection: {exc.args[0]}"] += 1
            self.close()
            return
        except asyncio.IncompleteReadError:
            result.errors["connection: closed inside the body"] += 1
            self.close()
            return
        except (OSError, ValueError) as exc:  # refused, reset; ValueError: not an HTTP answer
            result.errors[f"connection: {type(exc).__name__}"] += 1
            self.close()
            return
        if not keep_alive:
            self.close()
        if 200 <= status < 300:
            result.latencies_ms.append(elapsed * 1000)
            result.versions[version] += 1
            result.first_seen_s.setdefault(version, time.perf_counter() - self._started)
        else:
            result.errors[f"status {status}"] += 1

    async def _exchange(self, message: bytes) -> tuple[int, str, bool, float]:
        """Send one request and read its whole answer: (status, X-Model-Version, keep-alive, seconds)."""
        if self._writer is None:
            await self._open()
        reader, writer = self._reader, self._writer
        started = time.perf_counter()
        writer.write(message)
        await writer.drain()
        status_line = await reader.readline()
        if not status_line:
            raise _ConnectionLost("closed before the status line")
        version_text, status_text = status_line.split(b" ", 2)[:2]
        status = int(status_text)
        headers: dict[bytes, bytes] = {}
        while True:
            line = await reader.readline()
            if not line:
                raise _ConnectionLost("closed inside the headers")
            if line in (b"\r\n", b"\n"):
                break
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        await self._read_body(reader, headers, status)
        elapsed = time.perf_counter() - started
        connection = headers.get(b"connection", b"").lower()
        keep_alive = connection != b"close" and (version_text != b"HTTP/1.0" or connection == b"keep-alive")
        if b"content-length" not in headers and b"transfer-encoding" not in headers and status not in (204, 304):
            keep_alive = False  # the body ran to the end of the connection
        version = headers.get(_VERSION_HEADER)
        return status, version.decode("latin-1") if version is not None else _NO_HEADER, keep_alive, elapsed

    @staticmethod
    async def _read_body(reader: asyncio.StreamReader, headers: dict[bytes, bytes], status: int) -> None:
        if status in (204, 304) or 100 <= status < 200:
            return
        if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            while True:
                size = int((await reader.readline()).split(b";")[0].strip() or b"x", 16)
                if size == 0:
                    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return
                await reader.readexactly(size + 2)  # the chunk and its CRLF
        length = headers.get(b"content-length")
        if length is not None:
            await reader.readexactly(int(length))
        else:
            await reader.read()  # no length: the body ends when the server closes

    async def _open(self) -> None:
        if self._opened:
            self._result.reconnects += 1
        self._opened += 1
        self._reader, self._writer = await asyncio.open_connection(self._target.host, self._target.port)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()  # no wait_closed here: the server may never answer the FIN of a timed-out request
        self._reader = self._writer = None

    async def aclose(self) -> None:
        writer = self._writer
        self.close()
        if writer is not None:
            with contextlib.suppress(OSError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
