"""ASGI middleware in front of the routes: the bearer token and the request size limit.

Both checks run before any route reads the body, so an unauthenticated or oversized request
costs no parsing: 401 without the right ``Authorization: Bearer <token>``, 413 when the body
is larger than the limit (by its ``Content-Length`` or, for a chunked body, while it streams
in). The body is read here once and handed to the application unchanged.
"""
from __future__ import annotations

import hmac
import json

from .problems import error_body

DEFAULT_MAX_BODY_BYTES = 10_000_000
"""Default request size limit (bytes): 90 days of Tune v1 timelines fit with room to spare."""

OPEN_PATHS = frozenset({"/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
"""Paths answered without the token (no data in, no data out)."""


async def _send_json(send, status: int, body: dict, headers: tuple = ()) -> None:
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(payload)).encode()), *headers]})
    await send({"type": "http.response.body", "body": payload})


def _header(scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value
    return None


class Guard:
    """Wrap an ASGI ``app``: require ``token`` (when not None) and cap bodies at ``max_body_bytes``."""

    def __init__(self, app, token: str | None, max_body_bytes: int):
        self.app = app
        self.expected = None if token is None else f"Bearer {token}".encode()
        self.max_body_bytes = max_body_bytes

    def authorised(self, scope) -> bool:
        """Whether the request may pass: open path, no token configured, or the right bearer token."""
        if self.expected is None or scope["path"] in OPEN_PATHS:
            return True
        given = _header(scope, b"authorization")
        return given is not None and hmac.compare_digest(given, self.expected)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not self.authorised(scope):
            await _send_json(send, 401, error_body("missing or wrong bearer token"),
                             ((b"www-authenticate", b"Bearer"),))
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await _send_json(send, 413, error_body(self._too_large(int(declared))))
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body.extend(message.get("body", b""))
            more = message.get("more_body", False)
            if len(body) > self.max_body_bytes:
                await _send_json(send, 413, error_body(self._too_large(len(body))))
                return
        await self.app(scope, self._replay(bytes(body), receive), send)

    def _too_large(self, size: int) -> str:
        return f"request body of {size} bytes or more is over the limit of {self.max_body_bytes} bytes"

    @staticmethod
    def _replay(body: bytes, receive):
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay
