"""Webhook delivery to a real local HTTP receiver: signature, event id, retries, timeouts, refusals."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest_asyncio

from voipbin.events.outbox import Claimed
from voipbin.events.signature import verify

from .conftest import LiveServer, Receiver, live_server, make_settings

FAST = {"webhook_retry_base_seconds": 0.05, "webhook_retry_max_seconds": 0.2, "webhook_timeout_seconds": 1.0}


class Outcomes:
    """Final and intermediate outcomes recorded by the outbox, awaitable per event id."""

    def __init__(self, server: LiveServer) -> None:
        self.seen: list[tuple[str, int, str]] = []
        self._changed = asyncio.Condition()
        server.runtime.outbox.on_recorded(self._record)

    def _record(self, claimed: Claimed, status: str) -> None:
        self.seen.append((claimed.id, claimed.attempt, status))
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait(self, predicate: Callable[[list[tuple[str, int, str]]], bool], timeout: float = 10) -> None:
        async with asyncio.timeout(timeout):
            async with self._changed:
                await self._changed.wait_for(lambda: predicate(self.seen))

    async def final(self, event_id: str, timeout: float = 10) -> tuple[int, str]:
        await self.wait(lambda seen: any(i == event_id and s in ("delivered", "failed") for i, _, s in seen), timeout)
        return next((a, s) for i, a, s in self.seen if i == event_id and s in ("delivered", "failed"))


async def configure_webhook(server: LiveServer, uri: str, method: str = "POST") -> str:
    """Point the customer's webhook at ``uri``; returns the webhook_secret."""
    async with server.http() as http:
        rotated = await http.post("/v1.0/customer/webhook_secret/rotate")
        assert rotated.status_code == 200, rotated.text
        r = await http.put("/v1.0/customer", json={"webhook_method": method, "webhook_uri": uri})
        assert r.status_code == 200, r.text
        return str(rotated.json()["webhook_secret"])


async def create_extension(server: LiveServer, ext: str) -> dict[str, Any]:
    async with server.http() as http:
        r = await http.post("/v1.0/extensions", json={"name": "n", "detail": "d", "password": "phone-pass-1", "extension": ext})
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


@pytest_asyncio.fixture
async def fast_server(sqlite_url: str) -> AsyncIterator[LiveServer]:
    async with live_server(make_settings(sqlite_url, **FAST)) as live:
        yield live


def of_type(requests: list[Any], event_type: str) -> list[Any]:
    return [r for r in requests if json.loads(r.body)["type"] == event_type]


async def test_every_event_is_posted_signed_with_event_id(fast_server: LiveServer, receiver: Receiver) -> None:
    outcomes = Outcomes(fast_server)
    secret = await configure_webhook(fast_server, receiver.url)
    ext = await create_extension(fast_server, "7001")
    reqs = await receiver.wait_until(lambda rs: len(of_type(rs, "extension_created")) == 1)
    req = of_type(reqs, "extension_created")[0]
    assert req.method == "POST" and req.path == "/hooks/voipbin"
    assert json.loads(req.body) == {"type": "extension_created",  # events never carry the SIP password
                                    "data": {k: v for k, v in ext.items() if k != "password"}}
    assert req.headers["content-type"] == "application/json"
    assert verify(secret, req.body, req.headers["x-voipbin-signature"])
    assert req.headers["x-voipbin-signature"].startswith("sha256=")
    assert not verify("another-secret", req.body, req.headers["x-voipbin-signature"])
    event_id = req.headers["x-voipbin-event-id"]
    assert await outcomes.final(event_id) == (1, "delivered")
    row = await fast_server.runtime.outbox.get(event_id)
    assert row is not None and row.status == "delivered" and row.attempts == 1 and row.last_status_code == 200
    # the customer_updated event of the PUT that set the webhook is delivered too (every event of the account)
    await receiver.wait_until(lambda rs: len(of_type(rs, "customer_updated")) == 1)


async def test_webhook_method_is_used(fast_server: LiveServer, receiver: Receiver) -> None:
    await configure_webhook(fast_server, receiver.url, method="PUT")
    await create_extension(fast_server, "7002")
    reqs = await receiver.wait_until(lambda rs: len(of_type(rs, "extension_created")) == 1)
    assert of_type(reqs, "extension_created")[0].method == "PUT"


async def test_5xx_is_retried_with_the_same_id_and_body(fast_server: LiveServer, receiver: Receiver) -> None:
    outcomes = Outcomes(fast_server)
    await configure_webhook(fast_server, receiver.url)
    await receiver.wait_until(lambda rs: len(rs) == 1)  # customer_updated
    receiver.behave = lambda n: 500 if n in (1, 2) else (503 if n == 3 else 200)
    await create_extension(fast_server, "7003")
    reqs = await receiver.wait_until(lambda rs: len(rs) == 5 and rs[-1].answered == 200)
    attempts = reqs[1:]
    assert [r.answered for r in attempts] == [500, 500, 503, 200]
    assert len({r.headers["x-voipbin-event-id"] for r in attempts}) == 1
    assert len({r.body for r in attempts}) == 1
    assert [r.headers["x-voipbin-delivery-attempt"] for r in attempts] == ["1", "2", "3", "4"]
    gaps = [b.at - a.at for a, b in zip(attempts, attempts[1:], strict=False)]
    assert gaps[0] >= 0.04 and gaps[1] >= 0.08  # 0.05 s doubling (+-20 % jitter)
    assert await outcomes.final(attempts[0].headers["x-voipbin-event-id"]) == (4, "delivered")


async def test_4xx_is_a_permanent_failure(fast_server: LiveServer, receiver: Receiver) -> None:
    outcomes = Outcomes(fast_server)
    await configure_webhook(fast_server, receiver.url)
    await receiver.wait_until(lambda rs: len(rs) == 1)
    receiver.behave = lambda n: 404
    await create_extension(fast_server, "7004")
    reqs = await receiver.wait_until(lambda rs: len(rs) == 2)
    event_id = reqs[1].headers["x-voipbin-event-id"]
    assert await outcomes.final(event_id) == (1, "failed")
    row = await fast_server.runtime.outbox.get(event_id)
    assert row is not None and row.status == "failed" and row.last_status_code == 404 and row.tm_finish
    assert "HTTP 404" in row.last_error
    assert len(receiver.requests) == 2  # a failed row is never claimed again


async def test_retries_are_bounded_then_failed(sqlite_url: str, receiver: Receiver) -> None:
    async with live_server(make_settings(sqlite_url, **FAST, webhook_max_attempts=3)) as server:
        outcomes = Outcomes(server)
        receiver.behave = lambda n: 500
        await configure_webhook(server, receiver.url)
        reqs = await receiver.wait_until(lambda rs: len(rs) == 3)
        assert await outcomes.final(reqs[0].headers["x-voipbin-event-id"]) == (3, "failed")
        assert len(receiver.requests) == 3


async def test_a_receiver_slower_than_the_timeout_is_retried(sqlite_url: str, receiver: Receiver) -> None:
    async with live_server(make_settings(sqlite_url, **{**FAST, "webhook_timeout_seconds": 0.3})) as server:
        outcomes = Outcomes(server)
        receiver.behave = lambda n: 3.0 if n == 0 else 200
        await configure_webhook(server, receiver.url)
        reqs = await receiver.wait_until(lambda rs: len(rs) == 2 and rs[1].answered == 200)
        assert reqs[0].headers["x-voipbin-event-id"] == reqs[1].headers["x-voipbin-event-id"]
        assert 0.3 <= reqs[1].at - reqs[0].at < 1.5
        event_id = reqs[0].headers["x-voipbin-event-id"]
        assert await outcomes.final(event_id) == (2, "delivered")
        first = [s for i, a, s in outcomes.seen if i == event_id and a == 1]
        assert first == ["pending"]


async def test_default_timeout_is_5_seconds(sqlite_url: str, receiver: Receiver) -> None:
    settings = make_settings(sqlite_url, webhook_retry_base_seconds=0.01)
    assert settings.webhook_timeout_seconds == 5.0
    async with live_server(settings) as server:
        assert server.runtime.webhooks.timeout_seconds == 5.0
        receiver.behave = lambda n: 5.6 if n == 0 else 200
        await configure_webhook(server, receiver.url)
        reqs = await receiver.wait_until(lambda rs: len(rs) == 2, timeout=15)
        gap = reqs[1].at - reqs[0].at
        assert 4.9 <= gap < 5.5, gap  # cut at 5 s (not when the receiver answered at 5.6 s)
        row = await server.runtime.outbox.get(reqs[0].headers["x-voipbin-event-id"])
        assert row is not None and row.attempts == 2


async def test_private_destination_is_refused_unless_allowed(sqlite_url: str, receiver: Receiver) -> None:
    async with live_server(make_settings(sqlite_url, **FAST, webhook_allow_private=False)) as server:
        outcomes = Outcomes(server)
        await configure_webhook(server, receiver.url)
        await create_extension(server, "7005")
        await outcomes.wait(lambda seen: len({i for i, _, s in seen if s == "failed"}) == 2)  # customer + extension
        for event_id in {i for i, _, _ in outcomes.seen}:
            row = await server.runtime.outbox.get(event_id)
            assert row is not None and row.status == "failed" and row.attempts == 1
            assert "non-public address 127.0.0.1" in row.last_error
        assert receiver.requests == []
