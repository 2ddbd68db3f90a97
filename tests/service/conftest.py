"""A real uvicorn server on a free 127.0.0.1 port, started and stopped by the tests, and an HTTP client."""
from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

import pytest

STARTUP_TIMEOUT_S = 30.0


@dataclass
class Answer:
    """An HTTP answer: status, headers and the body parsed as JSON (None when it is not JSON)."""

    status: int
    headers: dict
    body: object
    raw: bytes


def require_service_extra():
    """uvicorn, skipping the calling test module when the ``service`` extra is not installed."""
    pytest.importorskip("fastapi", reason="the service tests need the 'service' extra (FastAPI)")
    return pytest.importorskip("uvicorn", reason="the service tests need the 'service' extra (uvicorn)")


class LiveServer:
    """``create_app(**options)`` served by uvicorn in a thread on a socket bound to 127.0.0.1:0."""

    def __init__(self, **options):
        uvicorn = require_service_extra()
        from pyloopkit.service import create_app

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(create_app(**options), log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(STARTUP_TIMEOUT_S)
        self.sock.close()

    def call(self, method: str, path: str, body=None, *, data=None, headers=None) -> Answer:
        """``body`` is sent as JSON (NaN allowed, as Python writes it); ``data`` as raw bytes or chunks."""
        return http_call(self.url, method, path, body, data=data, headers=headers)


def http_call(url: str, method: str, path: str, body=None, *, data=None, headers=None) -> Answer:
    """One request with urllib; 4xx/5xx answers are returned, not raised."""
    if body is not None:
        data = json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            status, head, raw = r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        status, head, raw = e.code, dict(e.headers), e.read()
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = None
    return Answer(status, {k.lower(): v for k, v in head.items()}, parsed, raw)


@pytest.fixture(scope="package")
def server():
    """The service with default options (no token, default size limit)."""
    with LiveServer() as s:
        yield s
