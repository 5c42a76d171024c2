"""HTTP hardening in front of every route: body cap before parsing, security headers,
failed-login throttle. Pure ASGI so a body too large is refused before anyone reads it."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

MAX_BODY = 64 * 1024  # bytes; the largest legitimate body (an alert note) is under 2 KB
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),  # responses carry personal data: never cached
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        b"object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    ),
]
VENDOR_CACHE = (b"cache-control", b"public, max-age=604800")
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class _TooLarge(Exception):
    pass


class Guard:
    """ASGI middleware: refuse bodies over ``max_body`` with 413 (by Content-Length before the
    body is read, or while it streams in), and add the security headers to every response."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], max_body: int = MAX_BODY) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            await _refuse(send)
            return
        seen = 0
        started = False
        vendored = str(scope.get("path", "")).startswith("/static/vendor/")

        async def limited() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_body:
                    raise _TooLarge
            return msg

        async def with_headers(msg: Message) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
                have = {k.lower() for k, _v in msg.get("headers", [])}
                if vendored:  # a library shipped with the console, no personal data: cached a week
                    have.add(b"cache-control")
                    msg["headers"] = [*msg.get("headers", []), VENDOR_CACHE]
                msg["headers"] = [*msg.get("headers", []), *(h for h in SECURITY_HEADERS if h[0] not in have)]
            await send(msg)

        try:
            await self.app(scope, limited, with_headers)
        except _TooLarge:
            if not started:
                await _refuse(send)


async def _refuse(send: Send) -> None:
    body = '{"detail":"请求内容过大（上限64KB）"}'.encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": [*headers, *SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": body})


class LoginThrottle:
    """Failed authentications per client: after ``limit`` in ``window`` seconds the client is
    refused (429) until the window has passed, so keys cannot be guessed at line rate."""

    def __init__(self, limit: int = 10, window: float = 60.0) -> None:
        self.limit, self.window = limit, window
        self.failures: dict[str, list[float]] = {}

    def blocked(self, client: str) -> bool:
        recent = [t for t in self.failures.get(client, []) if time.monotonic() - t < self.window]
        self.failures[client] = recent
        return len(recent) >= self.limit

    def failed(self, client: str) -> None:
        self.failures.setdefault(client, []).append(time.monotonic())
        if len(self.failures) > 100_000:
            self.failures.clear()
