"""A conference lives on one media pod (issue 19): two media runtimes on one PostgreSQL and NATS, with
scripted call legs and no SIP between the pods (so no pod leg: with SIP, see
test_pods_conference_legs.py). A call held by pod B cannot join a room mixed on live pod A (the action fails
naming the field and both pods; no participant row, no second room); once A is gone, B takes the
conference over and the call joins."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from tests_support.fake_legs import FakeOriginator
from voipbin.config import Settings
from voipbin.events.bus import event_queue
from voipbin.events.model import Event
from voipbin.runtime import Runtime
from voipbin.store.models import Conference

pytestmark = [pytest.mark.postgres, pytest.mark.nats]

NATS_URL = os.environ.get("VOIPBIN_TEST_NATS_URL", "nats://127.0.0.1:4222")


def _settings(db_url: str, pod_id: str) -> Settings:
    return Settings(_env_file=None, database_url=db_url, bus_url=NATS_URL, role="media",  # type: ignore[call-arg]
                    pod_id=pod_id, sip_enabled=False, trunk_uri="sip:trunk.test:5060",
                    number_pool="+15550100000-+15550109999")


@pytest_asyncio.fixture
async def pods(postgres_url: str) -> AsyncIterator[tuple[Runtime, Runtime, FakeOriginator]]:
    a = Runtime(_settings(postgres_url, "pod-a"), originator=FakeOriginator())
    legs_b = FakeOriginator()
    b = Runtime(_settings(postgres_url, "pod-b"), originator=legs_b)
    await a.start()
    await b.start()
    try:
        yield a, b, legs_b
    finally:
        await b.stop()
        await a.stop()


async def _join_from_b(b: Runtime, legs: FakeOriginator, customer_id: str, number: str,
                       conference_id: str) -> str:
    calls, _ = await b.calls.create_outgoing(customer_id, {
        "source": {"type": "tel", "target": number}, "destinations": [{"type": "tel", "target": "+15559870001"}],
        "actions": [{"type": "conference_join", "option": {"conference_id": conference_id}}]})
    leg = await legs.next_leg()
    await leg.answer()
    return calls[0].id


async def _next(queue: asyncio.Queue[Event], event_type: str) -> Event:
    async with asyncio.timeout(15):
        while (event := await queue.get()).event_type != event_type:
            pass
    return event


async def test_a_call_on_another_live_pod_cannot_join_until_the_rooms_pod_is_gone(pods: Any) -> None:
    a, b, legs_b = pods
    seed = await a.seed_sandbox()
    conference = await a.conferences.create(seed.customer_id, {"type": "conference"})
    assert conference.pod_id == "pod-a"
    events, subscription = await event_queue(b.bus.inner)
    try:
        call_id = await _join_from_b(b, legs_b, seed.customer_id, seed.number, conference.id)
        failed = await _next(events, "activeflow_action_failed")
        assert failed.data["reference_id"] == call_id
        message = failed.data["error"]["message"]
        assert "option.conference_id: " in message and "pod pod-a" in message and "pod pod-b" in message
        assert (await b.conferences.get(seed.customer_id, conference.id)).conferencecall_ids == []
        assert b.conferences.live_room(conference.id) is None  # no second, silent room on pod B

        await a.stop()  # pod A is gone (its pods row with it): B takes the conference over
        await _join_from_b(b, legs_b, seed.customer_id, seed.number, conference.id)
        joined = await _next(events, "conferencecall_joined")
        assert joined.data["conference_id"] == conference.id
        async with b.sessions() as db:
            assert (await db.get(Conference, conference.id)).pod_id == "pod-b"  # type: ignore[union-attr]
        assert b.conferences.live_room(conference.id) is not None
    finally:
        await subscription.unsubscribe()
