"""HTTP hardening: body cap before parsing, security headers, failed-login throttle."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from pipeline.api.guard import MAX_BODY, Guard, LoginThrottle


def app() -> TestClient:
    api = FastAPI()
    api.add_middleware(Guard)
    read: list[int] = []

    @api.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        body = await request.body()
        read.append(len(body))
        return {"n": len(body)}

    client = TestClient(api)
    client.read = read  # type: ignore[attr-defined]  # what the route saw, for the assertions
    return client


def test_a_body_over_the_cap_is_refused_before_the_route_reads_it() -> None:
    c = app()
    assert c.post("/echo", content=b"x" * 100).json() == {"n": 100}
    r = c.post("/echo", content=b"x" * (MAX_BODY + 1))
    assert r.status_code == 413 and "64KB" in r.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it streams in
        for _ in range(200):
            yield b"y" * 1024

    r = c.post("/echo", content=chunks())
    assert r.status_code == 413
    assert c.read == [100]  # type: ignore[attr-defined]  # the route never got the big ones


def test_every_response_carries_the_security_headers() -> None:
    r = app().post("/echo", content=b"{}")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]


def test_failed_logins_block_the_client_for_the_window() -> None:
    t = LoginThrottle(limit=3, window=0.2)
    for _ in range(3):
        assert not t.blocked("10.0.0.1")
        t.failed("10.0.0.1")
    assert t.blocked("10.0.0.1") and not t.blocked("10.0.0.2")
    import time

    time.sleep(0.25)
    assert not t.blocked("10.0.0.1")
