"""A small HTTP proxy in front of the tracking server that makes registry writes late: writes to promotion locks (their
create, rename, description) with chance `lock_share` and other registry writes with chance `other_share`, by up to
`max_delay_s`; every stage transition by `transition_s` (long critical sections). It can also drop the answer to the
first create of a promotion lock after the server made it (the client then sends the create again). What a loaded
server, a slow network and a client's retries do to a promotion, on demand."""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_REGISTRY = ("/mlflow/registered-models/", "/mlflow/model-versions/")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization"}


class DelayingProxy:
    def __init__(self, upstream: str, *, seed: int = 0, max_delay_s: float = 0.0, lock_share: float = 0.0,
                 other_share: float = 0.0, transition_s: tuple[float, float] = (0.0, 0.0),
                 lose_first_lock_answer: bool = False):  # fmt: skip
        self.upstream = urlsplit(upstream)
        self.max_delay_s, self.transition_s = max_delay_s, transition_s
        self.shares = {True: lock_share, False: other_share}
        self.lose_first_lock_answer = lose_first_lock_answer
        self.lock_creates: list[int] = []  # the status the server gave each create of a promotion lock
        self.delayed = 0
        self._random, self._mutex = random.Random(seed), threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> DelayingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _delay(self, method: str, path: str, body: bytes) -> float:
        if method == "GET" or not any(part in path for part in _REGISTRY):
            return 0.0
        with self._mutex:
            if path.endswith("/model-versions/transition-stage"):
                delay = self._random.uniform(*self.transition_s)
            elif self._random.random() < self.shares[b".promotion-lock" in body]:
                delay = self._random.uniform(0, self.max_delay_s)
            else:
                return 0.0
            self.delayed += delay > 0
            return delay

    def _forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, list, bytes]:
        connection = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=300)
        try:
            connection.request(method, path, body=body, headers=headers)
            answer = connection.getresponse()
            return answer.status, answer.getheaders(), answer.read()
        finally:
            connection.close()

    def _answer_lost(self, method: str, path: str, body: bytes, status: int) -> bool:
        """Whether this is a create of a promotion lock whose answer is to be lost (the first one only)."""
        if method != "POST" or not path.endswith("/registered-models/create"):
            return False
        try:
            name = json.loads(body or b"{}").get("name", "")
        except ValueError:
            return False
        if not name.endswith(".promotion-lock"):
            return False
        with self._mutex:
            self.lock_creates.append(status)
            return self.lose_first_lock_answer and len(self.lock_creates) == 1

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as MLflow's client expects

            def _relay(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP | {"host"}}
                time.sleep(proxy._delay(self.command, self.path, body))
                status, answer_headers, answer = proxy._forward(self.command, self.path, headers, body)
                if proxy._answer_lost(self.command, self.path, body, status):
                    status, answer_headers, answer = 503, [("Content-Type", "text/plain")], b"answer lost"
                self.send_response(status)
                for key, value in answer_headers:
                    if key.lower() not in _HOP_BY_HOP | {"content-length"}:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _relay

            def log_message(self, *args) -> None:  # the test reads outcomes, not an access log
                pass

        return Handler
