"""Request/reply of the event buses (the transport of pod commands): the in-memory bus and a real
NATS server behave alike: a reply, "no responder" at once for a subject nobody serves, a deadline,
and requests answered concurrently (a slow command does not hold back the next)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from voipbin.events.memory import MemoryBus
from voipbin.events.nats_bus import NatsBus
from voipbin.events.protocol import NoResponder

NATS_URL = os.environ.get("VOIPBIN_TEST_NATS_URL", "nats://127.0.0.1:4222")


@pytest_asyncio.fixture(params=["memory", pytest.param("nats", marks=pytest.mark.nats)])
async def buses(request: pytest.FixtureRequest) -> AsyncIterator[tuple[object, object]]:
    """(requester, responder): one shared MemoryBus, or two NATS connections (two processes' view)."""
    if request.param == "memory":
        bus = MemoryBus()
        yield bus, bus
        await bus.close()
        return
    a, b = NatsBus(NATS_URL, name="requester"), NatsBus(NATS_URL, name="responder")
    await a.start()
    await b.start()
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


async def test_a_request_gets_the_responders_reply(buses: tuple[object, object]) -> None:
    requester, responder = buses

    async def upper(payload: bytes) -> bytes:
        return payload.upper()

    sub = await responder.serve("voipbin.pods.pod-x.commands", upper)  # type: ignore[attr-defined]
    assert await requester.request("voipbin.pods.pod-x.commands", b"hello", 5) == b"HELLO"  # type: ignore[attr-defined]
    await sub.unsubscribe()
    with pytest.raises(NoResponder):
        await requester.request("voipbin.pods.pod-x.commands", b"hello", 5)  # type: ignore[attr-defined]


async def test_nobody_serving_is_no_responder_before_the_deadline(buses: tuple[object, object]) -> None:
    requester, _ = buses
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(NoResponder):
        await requester.request("voipbin.pods.pod-gone.commands", b"{}", 30)  # type: ignore[attr-defined]
    assert loop.time() - began < 5  # answered by the server, not by the 30 s deadline


async def test_a_silent_responder_is_a_timeout(buses: tuple[object, object]) -> None:
    requester, responder = buses
    never = asyncio.Event()

    async def hangs(payload: bytes) -> bytes:
        await never.wait()
        return b""

    await responder.serve("voipbin.pods.pod-slow.commands", hangs)  # type: ignore[attr-defined]
    with pytest.raises(TimeoutError):
        await requester.request("voipbin.pods.pod-slow.commands", b"{}", 0.3)  # type: ignore[attr-defined]


async def test_requests_are_answered_concurrently(buses: tuple[object, object]) -> None:
    requester, responder = buses
    release = asyncio.Event()

    async def handler(payload: bytes) -> bytes:
        if payload == b"slow":
            await release.wait()
        return payload

    await responder.serve("voipbin.pods.pod-y.commands", handler)  # type: ignore[attr-defined]
    slow = asyncio.ensure_future(requester.request("voipbin.pods.pod-y.commands", b"slow", 5))  # type: ignore[attr-defined]
    assert await requester.request("voipbin.pods.pod-y.commands", b"fast", 5) == b"fast"  # type: ignore[attr-defined]
    assert not slow.done()
    release.set()
    assert await slow == b"slow"
