"""Restart recovery (voipbin.calls.recovery) ends a dead pod's conference participants and aicalls, on
SQLite and PostgreSQL: each conferencecall of a call it ends, and everyone in a room it mixed, leaves
(``conferencecall_leaving``, ``conferencecall_leaved``, out of ``conferencecall_ids``); a connect room
it mixed ends as on its last leave, a conference room stays up, a live pod's room keeps its other
participants; its aicalls and those of its calls end ``terminated`` (``aicall_status_terminating``,
``aicall_status_terminated``). The events' webhook rows are written in the transaction of the change,
and a dead pod is reconciled once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest_asyncio
from sqlalchemy import select

from tests_support.events import Events
from voipbin.calls.recovery import Reconciled, Reconciler
from voipbin.common.clock import new_id, utcnow
from voipbin.conferences.records import ConferenceRecords
from voipbin.events.bus import event_queue
from voipbin.events.memory import MemoryBus
from voipbin.events.outbox import Outbox, OutboxBus
from voipbin.store.db import make_engine, make_sessionmaker
from voipbin.store.models import Aicall, Call, Conference, Conferencecall, Customer, OutboxEntry, Pod

DEAD, LIVE, WORKER = "pod-dead", "pod-live", "pod-worker"


@dataclass
class Store:
    sessions: Any
    bus: OutboxBus
    customer_id: str

    async def add(self, *rows: Any) -> None:
        async with self.sessions() as db, db.begin():
            db.add_all(rows)

    async def get(self, model: Any, row_id: str) -> Any:
        async with self.sessions() as db:
            return await db.get(model, row_id)

    async def webhooks(self, resource_id: str) -> list[str]:
        """The event types of the webhook rows written for ``resource_id``, in order."""
        async with self.sessions() as db:
            rows = (await db.scalars(select(OutboxEntry).where(OutboxEntry.resource_key.like(f"%:{resource_id}"))
                                     .order_by(OutboxEntry.seq))).all()
        return [r.event_type for r in rows]

    def reconciler(self, **kwargs: Any) -> Reconciler:
        return Reconciler(self.sessions, self.bus, pod_id=WORKER, expire_seconds=8, **kwargs)

    def call(self, pod_id: str, status: str = "progressing") -> Call:
        return Call(id=new_id(), customer_id=self.customer_id, status=status, pod_id=pod_id, tm_create=utcnow())

    def room(self, pod_id: str, kind: str, members: list[str]) -> Conference:
        return Conference(id=new_id(), customer_id=self.customer_id, type=kind, status="progressing", pod_id=pod_id,
                          conferencecall_ids=members, tm_create=utcnow())

    def member(self, room: Conference, call: Call, status: str = "joined") -> Conferencecall:
        return Conferencecall(id=new_id(), customer_id=self.customer_id, conference_id=room.id, reference_id=call.id,
                              status=status, tm_create=utcnow())

    def aicall(self, pod_id: str, call: Call, status: str = "progressing") -> Aicall:
        return Aicall(id=new_id(), customer_id=self.customer_id, reference_type="call", reference_id=call.id,
                      status=status, pod_id=pod_id, tm_create=utcnow())


@pytest_asyncio.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    bus = OutboxBus(MemoryBus(), Outbox(sessions))
    await bus.start()
    customer_id = new_id()
    async with sessions() as db, db.begin():  # a webhook: every event of the customer gets an outbox row
        db.add(Customer(id=customer_id, email=f"{customer_id}@example.test", name="c", webhook_secret="s",
                        webhook_uri="http://127.0.0.1:9/hook", tm_create=utcnow()))
        now = utcnow()
        db.add_all([Pod(id=DEAD, role="media", tm_heartbeat=now - timedelta(seconds=60), tm_create=now),
                    Pod(id=LIVE, role="media", tm_heartbeat=now, tm_create=now)])
    try:
        yield Store(sessions, bus, customer_id)
    finally:
        await engine.dispose()


async def test_a_dead_pods_participants_leave_its_rooms_and_its_aicalls_terminate(store: Store) -> None:
    # calls held by the dead pod, and calls of the live pod in rooms with them
    a, c, f = store.call(DEAD), store.call(DEAD), store.call(DEAD)
    b, d, e, g = store.call(LIVE), store.call(LIVE), store.call(LIVE), store.call(LIVE)
    # r1: a live pod's room with a participant whose call the dead pod held (a pod leg)
    r1 = store.room(LIVE, "conference", [])
    cc1, cc2 = store.member(r1, a), store.member(r1, b)
    # r2: a connect room the dead pod mixed, its other party a live pod's call (a pod leg)
    r2 = store.room(DEAD, "connect", [])
    cc3, cc4 = store.member(r2, c), store.member(r2, d, status="joining")
    # r3: a conference room the dead pod mixed, with only a live pod's call in it
    r3 = store.room(DEAD, "conference", [])
    cc5 = store.member(r3, e)
    # r4: a live pod's connect room: its own leave (when the leg's RTP stops) releases the other party
    r4 = store.room(LIVE, "connect", [])
    cc6, cc7 = store.member(r4, f), store.member(r4, g)
    # r5: a connect room the dead pod mixed that nobody joined: it waits for a participant
    r5 = store.room(DEAD, "connect", [])
    r1.conferencecall_ids, r2.conferencecall_ids = [cc1.id, cc2.id], [cc3.id, cc4.id]
    r3.conferencecall_ids, r4.conferencecall_ids = [cc5.id], [cc6.id, cc7.id]
    x, y = store.aicall(DEAD, a), store.aicall(LIVE, b)
    await store.add(a, b, c, d, e, f, g, r1, r2, r3, r4, r5)
    await store.add(cc1, cc2, cc3, cc4, cc5, cc6, cc7, x, y)
    queue, sub = await event_queue(store.bus.inner, f"customer_id:{store.customer_id}")
    events = Events(queue, timeout=10)

    done = await store.reconciler().reap_expired()

    assert (done.calls, done.conferencecalls, done.conferences, done.aicalls) == (3, 5, 1, 1)
    for member in (cc1, cc3, cc5, cc6):
        assert (await store.get(Conferencecall, member.id)).status == "leaved"
        assert await store.webhooks(member.id) == ["conferencecall_leaving", "conferencecall_leaved"]
    assert (await store.get(Conferencecall, cc4.id)).status == "leaved"  # joining: its leg never connected
    for member in (cc2, cc7):
        assert (await store.get(Conferencecall, member.id)).status == "joined"
        assert await store.webhooks(member.id) == []
    room1, room2, room3, room4, room5 = [await store.get(Conference, r.id) for r in (r1, r2, r3, r4, r5)]
    assert (room1.status, room1.conferencecall_ids) == ("progressing", [cc2.id])
    assert (room2.status, room2.conferencecall_ids) == ("terminated", [])
    assert room2.tm_end is not None
    assert await store.webhooks(r2.id) == ["conference_updated"] * 3  # its list, terminating, terminated
    assert (room3.status, room3.conferencecall_ids) == ("progressing", [])
    assert (room4.status, room4.conferencecall_ids) == ("progressing", [cc7.id])  # ends on the live pod
    assert (room5.status, await store.webhooks(r5.id)) == ("progressing", [])
    ended = await store.get(Aicall, x.id)
    assert (ended.status, ended.tm_end is not None) == ("terminated", True)
    assert await store.webhooks(x.id) == ["aicall_status_terminating", "aicall_status_terminated"]
    assert (await store.get(Aicall, y.id)).status == "progressing"
    # and on the bus once committed, in the order of the transaction and of each lifecycle
    await events.next("conference_updated", r2.id, status="terminated")
    await events.next("aicall_status_terminated", x.id, status="terminated")
    assert events.types(x.id) == ["aicall_status_terminating", "aicall_status_terminated"]
    await sub.unsubscribe()

    # the dead pod was claimed: nothing is ended twice
    assert not await store.reconciler().reap_expired()
    # the live room's own leave of the participant (its pod leg's RTP stopped) changes nothing more
    records = ConferenceRecords(store.sessions, store.bus, pod_id=LIVE)
    assert await records.close_conferencecall(r1.id, cc1.id)
    assert await store.webhooks(cc1.id) == ["conferencecall_leaving", "conferencecall_leaved"]
    assert await store.webhooks(r1.id) == ["conference_updated"]


async def test_single_process_start_ends_every_participant_and_aicall_from_where_they_stopped(store: Store) -> None:
    a, b = store.call(""), store.call("", status="hangup")  # b's end was stored, its participant's was not
    room = store.room("", "conference", [])
    joined, leaving = store.member(room, a), store.member(room, b, status="leaving")
    room.conferencecall_ids = [joined.id, leaving.id]
    talking, ending = store.aicall("", a), store.aicall("", b, status="terminating")
    await store.add(a, b, room)
    await store.add(joined, leaving, talking, ending)

    done = await store.reconciler(single_process=True).reconcile_at_start()

    assert (done.calls, done.conferencecalls, done.conferences, done.aicalls) == (1, 2, 0, 2)
    assert await store.webhooks(joined.id) == ["conferencecall_leaving", "conferencecall_leaved"]
    assert await store.webhooks(leaving.id) == ["conferencecall_leaved"]
    row = await store.get(Conference, room.id)
    assert (row.status, row.conferencecall_ids) == ("progressing", [])  # a conference room stays up
    assert await store.webhooks(room.id) == ["conference_updated"]
    assert await store.webhooks(talking.id) == ["aicall_status_terminating", "aicall_status_terminated"]
    assert await store.webhooks(ending.id) == ["aicall_status_terminated"]
    assert not await store.reconciler(single_process=True).reconcile_at_start()


async def test_an_orphan_call_ends_with_its_participant_and_aicall(store: Store) -> None:
    orphan, other = store.call(DEAD), store.call(WORKER)
    room = store.room(WORKER, "connect", [])  # mixed here: this process runs its leave (and ends it)
    mine, theirs = store.member(room, orphan), store.member(room, other)
    room.conferencecall_ids = [mine.id, theirs.id]
    talk = store.aicall(DEAD, orphan)
    await store.add(orphan, other, room)
    await store.add(mine, theirs, talk)

    assert await store.reconciler().end_orphan(orphan)

    assert (await store.get(Conferencecall, mine.id)).status == "leaved"
    assert (await store.get(Conferencecall, theirs.id)).status == "joined"
    row = await store.get(Conference, room.id)
    assert (row.status, row.conferencecall_ids) == ("progressing", [theirs.id])
    assert (await store.get(Aicall, talk.id)).status == "terminated"


def test_reconciled_counts_every_kind() -> None:
    assert not Reconciled()
    assert Reconciled(aicalls=1) and Reconciled(conferencecalls=1)
