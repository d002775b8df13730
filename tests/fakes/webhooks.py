"""A loopback chat webhook (Slack / Microsoft Teams incoming webhooks) for tests.

Records every POST (path and JSON body) in `posts`; `fail_next(status, count,
retry_after=...)` answers the next `count` posts with that status instead (429 with a
Retry-After, 500, 404 for a removed webhook). Use the `fake_webhook` fixture; its `url`
is a webhook URL like Slack's (`/services/T000/B000/<secret>`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class FakeWebhook:
    def __init__(self) -> None:
        self.posts: list[tuple[str, dict]] = []
        self.failures: list[tuple[int, float | None]] = []
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def url(self) -> str:
        return f"{self.base}/services/T000/B000/s3cr3t-w3bh00k-t0k3n"

    def fail_next(self, status: int, count: int = 1, *, retry_after: float | None = None) -> None:
        with self.lock:
            self.failures += [(status, retry_after)] * count

    def start(self) -> FakeWebhook:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(fake: FakeWebhook) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # quiet
            return

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            with fake.lock:
                failure = fake.failures.pop(0) if fake.failures else None
                if failure is None:
                    fake.posts.append((self.path, json.loads(raw or b"{}")))
            status = failure[0] if failure else 200
            self.send_response(status)
            if failure and failure[1] is not None:
                self.send_header("Retry-After", str(failure[1]))
            body = b"ok" if status == 200 else b"error"
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@pytest.fixture
def fake_webhook() -> Iterator[FakeWebhook]:
    fake = FakeWebhook().start()
    yield fake
    fake.stop()
