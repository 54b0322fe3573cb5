"""Outbox rows through their states on SQLite and PostgreSQL; concurrent claims share rows (SKIP LOCKED)."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from voipbin.common.clock import utcnow
from voipbin.events.model import Event
from voipbin.events.outbox import Outbox
from voipbin.events.retry import Outcome, RetryPolicy
from voipbin.store.db import make_engine, make_sessionmaker
from voipbin.store.models import Customer


@pytest_asyncio.fixture
async def env(db_url: str) -> AsyncIterator[dict[str, Any]]:
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    async with sessions() as s, s.begin():
        hooked = Customer(email="hooked@example.com", webhook_method="", webhook_uri="http://example.com/h",
                          webhook_secret="s" * 64, meta={})
        plain = Customer(email="plain@example.com", webhook_uri="", webhook_secret="t" * 64, meta={})
        s.add_all([hooked, plain])
    outbox = Outbox(sessions, policy=RetryPolicy(base_seconds=0.01, max_delay_seconds=0.02, max_attempts=3),
                    rng=random.Random(3))
    try:
        yield {"outbox": outbox, "hooked": hooked.id, "plain": plain.id, "dialect": engine.dialect.name,
               "sessions": sessions}
    finally:
        await engine.dispose()


def ev(customer_id: str, call_id: str = "c1") -> Event:
    return Event("call_created", customer_id, "call", call_id, {"id": call_id})


async def test_only_customers_with_a_webhook_get_rows_once(env: dict[str, Any]) -> None:
    outbox: Outbox = env["outbox"]
    e = ev(env["hooked"])
    assert await outbox.enqueue(e) is True
    assert await outbox.enqueue(e) is False  # same event again: still one row
    assert await outbox.enqueue(ev(env["plain"])) is False
    row = await outbox.get(e.id)
    assert row is not None
    assert (row.status, row.attempts, row.method, row.uri) == ("pending", 0, "POST", "http://example.com/h")
    assert row.body == '{"type":"call_created","data":{"id":"c1"}}'
    assert await outbox.counts() == {"pending": 1}


async def test_claim_retry_deliver(env: dict[str, Any]) -> None:
    outbox: Outbox = env["outbox"]
    e = ev(env["hooked"])
    await outbox.enqueue(e)
    [claimed] = await outbox.claim_due(10, lease_seconds=30)
    assert (claimed.attempt, claimed.secret, claimed.body) == (1, "s" * 64, b'{"type":"call_created","data":{"id":"c1"}}')
    assert (await outbox.get(e.id)).status == "sending"  # type: ignore[union-attr]
    assert await outbox.claim_due(10, lease_seconds=30) == []  # leased
    assert await outbox.record(claimed, Outcome.RETRY, status_code=503, error="HTTP 503") == "pending"
    row = await outbox.get(e.id)
    assert row is not None and row.last_status_code == 503 and row.tm_update is not None
    assert row.tm_next_attempt >= row.tm_update + timedelta(seconds=0.008)  # backoff after the attempt
    async with asyncio.timeout(5):
        while not (again := await outbox.claim_due(10, 30)):
            await asyncio.sleep(0.005)
    assert again[0].attempt == 2
    assert await outbox.record(again[0], Outcome.DELIVERED, status_code=200) == "delivered"
    row = await outbox.get(e.id)
    assert row is not None and row.status == "delivered" and row.tm_finish is not None and row.attempts == 2
    assert await outbox.next_due() is None


async def test_permanent_failure_and_exhaustion(env: dict[str, Any]) -> None:
    outbox: Outbox = env["outbox"]
    a, b = ev(env["hooked"]), ev(env["hooked"])
    await outbox.enqueue(a)
    [ca] = await outbox.claim_due(1, 30)
    assert await outbox.record(ca, Outcome.PERMANENT, status_code=404, error="HTTP 404") == "failed"
    await outbox.enqueue(b)
    for attempt in (1, 2, 3):
        async with asyncio.timeout(5):
            while not (got := await outbox.claim_due(1, 30)):
                await asyncio.sleep(0.005)
        assert got[0].attempt == attempt
        status = await outbox.record(got[0], Outcome.RETRY, error="timeout")
    assert status == "failed"
    assert await outbox.counts() == {"failed": 2}


async def test_expired_lease_is_claimed_again_and_the_stale_result_ignored(env: dict[str, Any]) -> None:
    outbox: Outbox = env["outbox"]
    e = ev(env["hooked"])
    await outbox.enqueue(e)
    [first] = await outbox.claim_due(1, lease_seconds=0)  # a worker that will "die"
    [second] = await outbox.claim_due(1, lease_seconds=30)
    assert (first.attempt, second.attempt) == (1, 2)
    assert await outbox.record(first, Outcome.DELIVERED, status_code=200) is None  # lost its lease
    assert await outbox.record(second, Outcome.DELIVERED, status_code=200) == "delivered"


async def test_release_leases_makes_in_flight_rows_due(env: dict[str, Any]) -> None:
    outbox: Outbox = env["outbox"]
    await outbox.enqueue(ev(env["hooked"]))
    await outbox.claim_due(1, lease_seconds=3600)
    assert await outbox.claim_due(1, 3600) == []
    assert await outbox.release_leases() == 1
    assert len(await outbox.claim_due(1, 3600)) == 1


@pytest.mark.postgres
async def test_concurrent_workers_never_claim_the_same_row(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    sessions = make_sessionmaker(engine)
    try:
        async with sessions() as s, s.begin():
            c = Customer(email="h@example.com", webhook_uri="http://example.com/h", webhook_secret="s", meta={})
            s.add(c)
        outbox = Outbox(sessions)
        ids = set()
        for i in range(200):  # 200 resources: rows of one resource are claimed one at a time (order)
            e = ev(c.id, f"c{i}")
            await outbox.enqueue(e)
            ids.add(e.id)
        workers = [Outbox(sessions) for _ in range(4)]

        async def drain(o: Outbox) -> list[str]:
            got: list[str] = []
            while batch := await o.claim_due(7, 60):
                got += [b.id for b in batch]
            return got

        results = await asyncio.gather(*(drain(o) for o in workers))
        claimed = [i for r in results for i in r]
        assert len(claimed) == len(set(claimed)) == 200 and set(claimed) == ids
        assert sum(1 for r in results if r) >= 2  # the work was actually shared
    finally:
        await engine.dispose()


async def test_a_resource_events_are_claimed_in_order_retries_included(env: dict[str, Any]) -> None:
    outbox: Outbox = env["outbox"]
    first, second = ev(env["hooked"], "a"), ev(env["hooked"], "a")
    other = ev(env["hooked"], "b")
    for e in (first, second, other):
        await outbox.enqueue(e)
    got = await outbox.claim_due(10, 30)
    assert {c.id for c in got} == {first.id, other.id}  # the second event of "a" waits for the first
    [c1] = [c for c in got if c.id == first.id]
    assert await outbox.record(c1, Outcome.RETRY, status_code=503) == "pending"
    async with asyncio.timeout(5):  # while the first backs off, the second is held back
        while not (again := await outbox.claim_due(10, 30)):
            await asyncio.sleep(0.005)
    assert [c.id for c in again] == [first.id]
    assert await outbox.record(again[0], Outcome.PERMANENT, status_code=404) == "failed"
    assert [c.id for c in await outbox.claim_due(10, 30)] == [second.id]  # after the final failure


async def test_next_due_ignores_rows_held_back_by_an_earlier_one(env: dict[str, Any]) -> None:
    outbox: Outbox = env["outbox"]
    first, second = ev(env["hooked"], "a"), ev(env["hooked"], "a")
    await outbox.enqueue(first)
    await outbox.enqueue(second)
    [c1] = await outbox.claim_due(10, lease_seconds=3600)
    due = await outbox.next_due()
    # the first one's lease end, not the second's "now" (that would make the worker spin)
    assert due is not None and due > utcnow() + timedelta(seconds=3000)
    assert await outbox.unfinished() == 2
