"""The outbox row is part of the transaction of the change it reports (SQLite and PostgreSQL):
a rollback publishes nothing and writes no row; a commit writes both; a crash after the commit
leaves the row for the worker; live publishes leave in commit order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select

from voipbin.events.memory import MemoryBus
from voipbin.events.model import Event
from voipbin.events.outbox import Outbox, OutboxBus
from voipbin.store.db import make_engine, make_sessionmaker
from voipbin.store.models import Customer, Flow, OutboxEntry


@pytest_asyncio.fixture
async def env(db_url: str) -> AsyncIterator[dict[str, Any]]:
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    async with sessions() as s, s.begin():
        customer = Customer(email="hooked@example.com", webhook_uri="http://example.com/h", webhook_secret="s",
                            meta={})
        s.add(customer)
    inner = MemoryBus()
    bus = OutboxBus(inner, Outbox(sessions))
    await bus.start()
    seen: list[Event] = []
    await bus.subscribe("customer_id:*", seen.append)
    try:
        yield {"bus": bus, "sessions": sessions, "customer_id": customer.id, "seen": seen}
    finally:
        await bus.close()
        await engine.dispose()


class Boom(Exception):
    pass


def flow_event(customer_id: str, flow_id: str, kind: str = "flow_created") -> Event:
    return Event(kind, customer_id, "flow", flow_id, {"id": flow_id})


async def rows(sessions: Any) -> tuple[list[str], list[str]]:
    async with sessions() as s:
        flows = (await s.scalars(select(Flow.id))).all()
        outbox = (await s.scalars(select(OutboxEntry.id))).all()
    return list(flows), list(outbox)


async def test_a_failure_before_the_commit_loses_the_change_and_invents_no_event(env: dict[str, Any]) -> None:
    bus: OutboxBus = env["bus"]
    with pytest.raises(Boom):
        async with env["sessions"]() as session, session.begin():
            flow = Flow(customer_id=env["customer_id"], name="f", actions=[])
            session.add(flow)
            await session.flush()
            await bus.publish(flow_event(env["customer_id"], flow.id), session=session)
            raise Boom  # e.g. the next statement of the same change failed
    await bus.flush()
    assert await rows(env["sessions"]) == ([], [])
    assert env["seen"] == []


async def test_a_commit_writes_the_change_and_its_webhook_then_publishes(env: dict[str, Any]) -> None:
    bus: OutboxBus = env["bus"]
    async with env["sessions"]() as session, session.begin():
        flow = Flow(customer_id=env["customer_id"], name="f", actions=[])
        session.add(flow)
        await session.flush()
        event = flow_event(env["customer_id"], flow.id)
        await bus.publish(event, session=session)
        assert env["seen"] == []  # nothing live before the commit
    await bus.flush()
    assert await rows(env["sessions"]) == ([flow.id], [event.id])
    assert [e.id for e in env["seen"]] == [event.id]


async def test_a_crash_after_the_commit_keeps_the_webhook(env: dict[str, Any]) -> None:
    """The live publish never happens (the process died right after the commit): the row is there."""
    sessions = env["sessions"]
    crashed = OutboxBus(MemoryBus(), Outbox(sessions))  # never started: stands for the dead process
    async with sessions() as session, session.begin():
        flow = Flow(customer_id=env["customer_id"], name="f", actions=[])
        session.add(flow)
        await session.flush()
        event = flow_event(env["customer_id"], flow.id)
        await crashed.publish(event, session=session)
        crashed._loop = None  # the loop is gone: the commit hook cannot schedule the live publish
    assert await rows(sessions) == ([flow.id], [event.id])
    async with sessions() as s:
        row = await s.get(OutboxEntry, event.id)
    assert row is not None and row.status == "pending" and row.resource_key == event.topic


@pytest.mark.parametrize("db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
async def test_live_publishes_leave_in_commit_order(env: dict[str, Any]) -> None:
    """Two write transactions at once (PostgreSQL; SQLite serializes writers)."""
    bus: OutboxBus = env["bus"]
    sessions = env["sessions"]
    flow_id = "f" * 8
    order: list[str] = []

    async def change(kind: str, hold: asyncio.Event | None, release: asyncio.Event | None) -> None:
        async with sessions() as session, session.begin():
            await bus.publish(flow_event(env["customer_id"], flow_id, kind), session=session)
            if release is not None:
                release.set()
            if hold is not None:
                await hold.wait()
        order.append(kind)

    first_committed = asyncio.Event()
    started = asyncio.Event()
    # "late" stages first but commits second; a direct publish in between keeps its place
    late = asyncio.create_task(change("flow_updated_late", first_committed, started))
    await started.wait()
    await change("flow_updated_early", None, None)
    await bus.publish(flow_event(env["customer_id"], flow_id, "flow_updated_direct"))
    first_committed.set()
    await late
    await bus.flush()
    assert [e.event_type for e in env["seen"]] == ["flow_updated_early", "flow_updated_direct", "flow_updated_late"]
    assert order == ["flow_updated_early", "flow_updated_late"]
