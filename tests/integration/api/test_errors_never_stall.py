"""Issue 14 "errors never stall": a 500 is one bounded log line (no locals, no credentials) and does not
hold up other requests; request bodies are capped (413 in the envelope), chunked ones too."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from voipbin.logging import MAX_TRACEBACK_FRAMES, configure_defaults, configure_logging

SECRET_TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLWZyYWdtZW50"


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """configure_logging("json") as ``serve`` does, writing into a buffer; the previous set-up restored after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    buffer = io.StringIO()
    with contextlib.redirect_stderr(buffer):
        configure_logging("json", "INFO")
    try:
        yield buffer
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        configure_defaults()


def _recurse(depth: int, payload: bytes) -> None:
    big_local = payload  # a local that a locals-rendering traceback would print
    if depth:
        _recurse(depth - 1, big_local)
    raise RuntimeError(f"store failed for ?token={SECRET_TOKEN} key vb_abcdefghijklmnop")


@pytest.fixture
async def boom_client(runtime) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    """The API with a test-only route that raises deep in a call stack holding a 1 MB local."""
    from voipbin.api.app import create_app

    app = create_app(runtime)

    async def boom() -> None:
        _recurse(40, b"L" * 1_000_000)

    app.add_api_route("/test/boom", boom, methods=["GET"])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as c:
        yield c


async def test_internal_error_is_a_500_envelope_and_one_bounded_log_line(
        boom_client: httpx.AsyncClient, json_logs: io.StringIO) -> None:
    r = await boom_client.get("/test/boom", headers={"X-Request-Id": "req-boom"})
    assert r.status_code == 500
    assert r.json()["error"] == {"status": "INTERNAL", "reason": "INTERNAL", "message": "internal error",
                                 "request_id": "req-boom", "details": []}
    lines = [line for line in json_logs.getvalue().splitlines() if "unhandled error" in line]
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["request_id"] == "req-boom" and record["path"] == "/test/boom"
    assert record["error"].startswith("RuntimeError: store failed")
    assert record["traceback"].count(" < ") == MAX_TRACEBACK_FRAMES - 1
    assert "_recurse" in record["traceback"]
    assert len(lines[0]) < 4000, "no locals, no source lines"
    assert "LLLL" not in lines[0] and "big_local" not in lines[0]
    assert SECRET_TOKEN[:12] not in lines[0] and "vb_abc" not in lines[0]


async def test_a_hundred_internal_errors_do_not_slow_other_requests(
        boom_client: httpx.AsyncClient, json_logs: io.StringIO, admin_token: str) -> None:
    q = {"token": admin_token}
    assert (await boom_client.get("/v1.0/customer", params=q)).status_code == 200  # warm caches
    latencies: list[float] = []

    async def customer_probe() -> None:
        for _ in range(40):
            start = time.perf_counter()
            assert (await boom_client.get("/v1.0/customer", params=q)).status_code == 200
            latencies.append(time.perf_counter() - start)

    errors = asyncio.gather(*(boom_client.get("/test/boom") for _ in range(100)))
    results, _ = await asyncio.gather(errors, customer_probe())
    assert [r.status_code for r in results] == [500] * 100
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    assert p99 < 0.100, f"GET /v1.0/customer p99 {p99 * 1000:.1f} ms during 100 internal errors"
    assert json_logs.getvalue().count("unhandled error") == 100


async def test_a_body_over_the_limit_is_413_in_the_envelope(client: httpx.AsyncClient) -> None:
    big = {"username": "x" * (1024 * 1024), "password": "y"}
    r = await client.post("/auth/login", json=big)
    assert r.status_code == 413
    assert r.json()["error"]["status"] == "INVALID_ARGUMENT"


async def test_a_chunked_body_is_cut_off_at_the_limit(client: httpx.AsyncClient) -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"username": "'
        for _ in range(200):  # 12.8 MB if read to the end
            sent += 1
            yield b"a" * 65536

    r = await client.post("/auth/login", content=chunks(), headers={"Content-Type": "application/json"})
    assert "content-length" not in r.request.headers
    assert r.status_code == 413
    assert r.json()["error"]["message"]
    assert sent <= 1024 * 1024 // 65536 + 1, f"read {sent} chunks past the limit"


async def test_a_body_under_the_limit_still_works(client: httpx.AsyncClient) -> None:
    r = await client.post("/auth/login", json={"username": "admin@localhost", "password": "p" * 500_000})
    assert r.status_code == 401


async def test_a_lone_surrogate_in_a_body_is_a_400_and_writes_nothing(client: httpx.AsyncClient,
                                                                       admin_token: str) -> None:
    t = {"token": admin_token}
    body = '{"type": "conference", "name": "\\ud800 standup"}'  # JSON escapes it; it is no Unicode text
    r = await client.post("/v1.0/conferences", params=t, content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "surrogate" in r.json()["error"]["message"], r.text
    assert (await client.get("/v1.0/conferences", params=t)).json()["result"] == []
    ok = '{"type": "conference", "name": "\\ud83d\\ude00 standup"}'  # a surrogate pair is an emoji: fine
    assert (await client.post("/v1.0/conferences", params=t, content=ok,
                              headers={"Content-Type": "application/json"})).json()["name"] == "\U0001f600 standup"
