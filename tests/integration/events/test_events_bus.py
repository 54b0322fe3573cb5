"""One suite for both buses (memory and NATS on 127.0.0.1:4222), and processes sharing events over NATS."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from websockets.asyncio.client import connect

from voipbin.events.bus import event_queue, make_bus
from voipbin.events.memory import MemoryBus
from voipbin.events.model import Event
from voipbin.events.nats_bus import NatsBus
from voipbin.events.protocol import EventBus
from voipbin.events.topics import InvalidTopic

from .conftest import NATS_URL, live_server, make_settings


@pytest_asyncio.fixture(params=["memory", pytest.param("nats", marks=pytest.mark.nats)])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[EventBus]:
    b = make_bus("memory://" if request.param == "memory" else NATS_URL)
    await b.start()
    try:
        yield b
    finally:
        await b.close()


def ev(customer: str, resource: str = "call", rid: str | None = None, **data: object) -> Event:
    rid = rid or str(uuid.uuid4())
    return Event(f"{resource}_created", customer, resource, rid, {"id": rid, **data})


async def next_event(q: asyncio.Queue[Event]) -> Event:
    return await asyncio.wait_for(q.get(), 5)


async def test_factory_picks_the_implementation() -> None:
    assert isinstance(make_bus("memory://"), MemoryBus)
    assert isinstance(make_bus("nats://127.0.0.1:4222"), NatsBus)
    with pytest.raises(ValueError):
        make_bus("redis://x")


async def test_publish_reaches_matching_subscribers_with_all_fields(bus: EventBus) -> None:
    cust = str(uuid.uuid4())
    q_all, _ = await event_queue(bus, f"customer_id:{cust}")
    q_calls, _ = await event_queue(bus, f"customer_id:{cust}:call:*")
    sent = ev(cust, "call", nested={"a": [1, 2]}, text="héllo")
    await bus.publish(sent)
    for q in (q_all, q_calls):
        got = await next_event(q)
        assert got == sent  # id, type, timestamp (microseconds), customer, resource, resource_id, data


async def test_patterns_exact_resource_and_wildcards(bus: EventBus) -> None:
    cust, other = str(uuid.uuid4()), str(uuid.uuid4())
    rid = str(uuid.uuid4())
    q_exact, _ = await event_queue(bus, f"customer_id:{cust}:call:{rid}")
    q_res, _ = await event_queue(bus, f"customer_id:{cust}:transcribe")
    q_any, _ = await event_queue(bus, "customer_id:*:call")
    events = [ev(cust, "call"), ev(cust, "call", rid), ev(cust, "transcribe"), ev(other, "call"),
              ev(cust, "callrecording")]
    for e in events:
        await bus.publish(e)
    assert await next_event(q_exact) == events[1]
    assert await next_event(q_res) == events[2]
    got_any = [await next_event(q_any) for _ in range(3)]
    assert got_any == [events[0], events[1], events[3]]
    # nothing else is pending behind them: a fresh marker is the next thing each queue gets
    marker = ev(cust, "call", rid)
    await bus.publish(marker)
    assert await next_event(q_exact) == marker and await next_event(q_any) == marker


async def test_unsubscribe_and_handler_errors(bus: EventBus) -> None:
    cust = str(uuid.uuid4())
    got: list[Event] = []

    def broken(_: Event) -> None:
        raise RuntimeError("subscriber bug")

    await bus.subscribe(f"customer_id:{cust}", broken)
    sub = await bus.subscribe(f"customer_id:{cust}", got.append)
    q, _ = await event_queue(bus, f"customer_id:{cust}")
    first = ev(cust)
    await bus.publish(first)
    assert await next_event(q) == first and got == [first]  # a failing handler harms no one
    await sub.unsubscribe()
    await sub.unsubscribe()  # idempotent
    second = ev(cust)
    await bus.publish(second)
    assert await next_event(q) == second
    assert got == [first]


async def test_agent_scoped_patterns(bus: EventBus) -> None:
    cust, agent = str(uuid.uuid4()), str(uuid.uuid4())
    q, _ = await event_queue(bus, f"agent_id:{agent}:queuecall")
    plain = ev(cust, "queuecall")
    mine = Event("queuecall_created", cust, "queuecall", "qc", {"id": "qc"}, agent_ids=(agent,))
    await bus.publish(plain)
    await bus.publish(mine)
    assert await next_event(q) == mine


async def test_invalid_pattern_is_rejected(bus: EventBus) -> None:
    with pytest.raises(InvalidTopic):
        await bus.subscribe("call:*", lambda e: None)


@pytest.mark.nats
async def test_two_buses_on_one_nats_server_see_each_others_events() -> None:
    api, media = NatsBus(NATS_URL, name="api"), NatsBus(NATS_URL, name="media")
    await api.start()
    await media.start()
    try:
        cust = str(uuid.uuid4())
        q, _ = await event_queue(api, f"customer_id:{cust}:transcribe")
        sent = ev(cust, "transcribe", text="from the media process")
        await media.publish(sent)
        assert await next_event(q) == sent
    finally:
        await api.close()
        await media.close()


@pytest.mark.nats
async def test_rest_event_on_one_process_reaches_websocket_on_another(sqlite_url: str) -> None:
    import json

    from voipbin.runtime import Runtime

    async with live_server(make_settings(sqlite_url, bus_url=NATS_URL)) as ws_process:
        other = Runtime(make_settings(sqlite_url, bus_url=NATS_URL, webhook_worker=False))
        await other.start()
        try:
            cid = ws_process.customer_id
            async with connect(ws_process.ws_url()) as ws:
                await ws.send(json.dumps({"type": "subscribe", "topics": [f"customer_id:{cid}:extension"]}))
                async with asyncio.timeout(5):
                    while not any(c.filters for c in ws_process.runtime.hub.connections):
                        await asyncio.sleep(0.01)
                row = await other.extensions.create(cid, {"name": "n", "detail": "d", "extension": "9001",
                                                          "password": "phone-pass-1"})
                msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
                assert (msg["event_type"], msg["data"]["id"]) == ("extension_created", row.id)
                assert msg["topic"] == f"customer_id:{cid}:extension:{row.id}"
        finally:
            await other.stop()
