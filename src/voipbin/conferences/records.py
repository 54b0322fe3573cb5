"""The stored side of conferences: ``conferences`` and ``conferencecalls`` rows, validated, read
and changed in one place, each change published in the transaction that stores it.

Request fields (``POST``/``PUT /conferences``, ``ConferenceManagerConference``): ``type``
(``conference`` or ``connect``; ``queue`` rooms belong to the queue system), ``name``, ``detail``,
``data`` (an object), ``timeout`` (seconds, 0 = none; 1-59 become 86400, upstream's rule),
``pre_flow_id``/``post_flow_id`` (a flow of this account, or empty / the nil UUID). A bad field
is an InvalidArgument (-> 400) naming it; a ``null`` leaves a field unchanged on ``PUT``.

Events: resource ``conference`` (``conference_created``, ``conference_updated`` for status,
joins and leaves, transcribes; ``conference_deleted``) and resource ``conferencecall``
(``conferencecall_joining``, ``conferencecall_joined``, ``conferencecall_leaving``,
``conferencecall_leaved``), bodies from :mod:`voipbin.conferences.serialize`.

Restart recovery (:mod:`voipbin.calls.recovery`) ends the participants of a dead process's calls
and rooms with :func:`end_conferencecalls`, in its own transaction.
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from voipbin.common.clock import new_id, utcnow
from voipbin.common.errors import InvalidArgument, NotFound
from voipbin.conferences import serialize
from voipbin.conferences.status import ConferencecallStatus, ConferenceStatus, ConferenceType, may_move
from voipbin.events.model import Event, EventPublisher
from voipbin.flows.actions import NIL_UUID
from voipbin.store.models import Conference, Conferencecall, Flow
from voipbin.store.pagination import paginate
from voipbin.store.records import owned, soft_delete

#: upstream: a timeout of 1-59 s is replaced by this default (24 h)
DEFAULT_TIMEOUT_S = 86400
MAX_TIMEOUT_S = 7 * 86400
MAX_NAME = 255
MAX_DETAIL = 10_000


def timeout_seconds(value: Any, field: str = "timeout") -> int:
    """A conference ``timeout``: 0 (none) or >= 60 seconds as given, 1-59 -> 86400 (upstream)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TIMEOUT_S:
        raise InvalidArgument(f"{field} must be an integer number of seconds between 0 and {MAX_TIMEOUT_S}",
                              field=field)
    return DEFAULT_TIMEOUT_S if 0 < value < 60 else value


def _text(body: dict[str, Any], key: str, limit: int) -> str:
    value = body[key]
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidArgument(f"{key} must be a string of at most {limit} characters", field=key)
    return value


class ConferenceRecords:
    """Rows of conferences and conferencecalls; reads for the API are owned-or-404."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], bus: EventPublisher, *, pod_id: str) -> None:
        self.sessions = sessions
        self._bus = bus
        self._pod_id = pod_id
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    # ------------------------------------------------------------------ conferences

    async def create(self, customer_id: str, body: dict[str, Any]) -> Conference:
        """A new ``starting`` conference (``conference_created``), then ``progressing``
        (``conference_updated``): the room is ready once this returns."""
        kind = body.get("type")
        if kind not in tuple(ConferenceType):
            raise InvalidArgument("type must be conference or connect (queue rooms are made by queues)", field="type")
        now = utcnow()
        row = Conference(id=new_id(), customer_id=customer_id, type=kind, status=ConferenceStatus.STARTING,
                         name="", detail="", data={}, timeout=0, pre_flow_id="", post_flow_id="",
                         conferencecall_ids=[], recording_id="", recording_ids=[], transcribe_id="",
                         transcribe_ids=[], pod_id=self._pod_id, tm_create=now, tm_update=now)
        async with self.sessions() as db, db.begin():
            await self._apply(db, row, body)
            db.add(row)
            await self._publish(row, "conference_created", db)
        return await self.change(row.id, "conference_updated", status=ConferenceStatus.PROGRESSING)

    async def update(self, customer_id: str, conference_id: str, body: dict[str, Any]) -> Conference:
        """``PUT /conferences/{id}``: name, detail, data, timeout, pre/post flow (``conference_updated``)."""
        async with self.sessions() as db, db.begin():
            row = await owned(db, Conference, conference_id, customer_id, what="conference")
            await self._apply(db, row, body)
            row.tm_update = utcnow()
            await self._publish(row, "conference_updated", db)
        return row

    async def _apply(self, db: AsyncSession, row: Conference, body: dict[str, Any]) -> None:
        """Set the writable fields present (not null) in ``body`` on ``row``, each validated."""
        present = {k for k in ("name", "detail", "data", "timeout", "pre_flow_id", "post_flow_id")
                   if body.get(k) is not None}
        if "name" in present:
            row.name = _text(body, "name", MAX_NAME)
        if "detail" in present:
            row.detail = _text(body, "detail", MAX_DETAIL)
        if "data" in present:
            if not isinstance(body["data"], dict):
                raise InvalidArgument("data must be an object", field="data")
            row.data = dict(body["data"])
        if "timeout" in present:
            row.timeout = timeout_seconds(body["timeout"])
        for key in ("pre_flow_id", "post_flow_id"):
            if key in present:
                setattr(row, key, await self._flow_id(db, row.customer_id, body[key], key))

    @staticmethod
    async def _flow_id(db: AsyncSession, customer_id: str, value: Any, field: str) -> str:
        """A flow id of this account ("" for empty or the nil UUID); InvalidArgument otherwise."""
        if value in ("", NIL_UUID):
            return ""
        try:
            flow_id = str(uuid.UUID(str(value)))
            await owned(db, Flow, flow_id, customer_id, what="flow")
        except (ValueError, NotFound) as exc:
            raise InvalidArgument(f"{field} does not name a flow of this account", field=field) from exc
        return flow_id

    async def get(self, customer_id: str, conference_id: str, *, deleted_ok: bool = False) -> Conference:
        async with self.sessions() as db:
            return await owned(db, Conference, conference_id, customer_id, what="conference", deleted_ok=deleted_ok)

    async def load(self, conference_id: str) -> Conference | None:
        async with self.sessions() as db:
            return await db.get(Conference, conference_id)

    async def list(self, customer_id: str, page_size: int | None, page_token: str | None
                   ) -> tuple[Sequence[Conference], str]:
        stmt = select(Conference).where(Conference.customer_id == customer_id, Conference.tm_delete.is_(None))
        async with self.sessions() as db:
            return await paginate(db, stmt, Conference, page_size, page_token)

    async def change(self, conference_id: str, event_type: str, *, add_call: str = "", remove_call: str = "",
                     add_transcribe: str = "", end_transcribe: str = "", **changes: Any) -> Conference:
        """In one transaction: set ``changes`` (a ``status`` only if the lifecycle allows the move),
        add/remove a participant id, start/end a transcribe, stamp ``tm_update``, publish ``event_type``.

        Changes of one conference are serialized (a lock in this process, the row locked with
        ``SELECT ... FOR UPDATE`` on PostgreSQL): two participants leaving at once both leave its lists."""
        lock = self._locks.setdefault(conference_id, asyncio.Lock())
        async with lock, self.sessions() as db, db.begin():
            row = await db.get(Conference, conference_id, with_for_update=True)
            assert row is not None
            status = changes.pop("status", None)
            if status is not None and may_move(row.status, status):
                row.status = status
                if status == ConferenceStatus.TERMINATED:
                    row.tm_end = utcnow()
            for key, value in changes.items():
                setattr(row, key, value)
            if add_call:
                row.conferencecall_ids = [*row.conferencecall_ids, add_call]
            if remove_call:
                row.conferencecall_ids = [i for i in row.conferencecall_ids if i != remove_call]
            if add_transcribe:
                row.transcribe_id = add_transcribe
                row.transcribe_ids = [*row.transcribe_ids, add_transcribe]
            if end_transcribe and row.transcribe_id == end_transcribe:
                row.transcribe_id = ""
            row.tm_update = utcnow()
            await self._publish(row, event_type, db)
        return row

    async def claim(self, conference_id: str, dead_pod_id: str) -> bool:
        """Make this process the conference's pod if ``dead_pod_id`` still holds it; True when it did."""
        async with self.sessions() as db, db.begin():
            result = await db.execute(update(Conference).where(
                Conference.id == conference_id, Conference.pod_id == dead_pod_id).values(pod_id=self._pod_id))
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def soft_delete(self, conference_id: str) -> Conference:
        async with self.sessions() as db, db.begin():
            row = await db.get(Conference, conference_id)
            assert row is not None
            soft_delete(row)
            await self._publish(row, "conference_deleted", db)
        return row

    # ------------------------------------------------------------------ conferencecalls

    async def new_conferencecall(self, conference: Conference, call_id: str, activeflow_id: str, *,
                                 conferencecall_id: str) -> Conferencecall:
        """A ``joining`` participant (``conferencecall_joining``); then its id joins ``conferencecall_ids``
        (``conference_updated``)."""
        now = utcnow()
        row = Conferencecall(id=conferencecall_id, customer_id=conference.customer_id, activeflow_id=activeflow_id,
                             conference_id=conference.id, reference_type="call", reference_id=call_id,
                             status=ConferencecallStatus.JOINING, tm_create=now, tm_update=now)
        async with self.sessions() as db, db.begin():
            db.add(row)
            await self._publish_call(row, "conferencecall_joining", db)
        await self.change(conference.id, "conference_updated", add_call=row.id)
        return row

    async def move_conferencecall(self, conferencecall_id: str, status: ConferencecallStatus) -> Conferencecall:
        """Move a participant forward (``conferencecall_<status>``); a move backwards changes nothing."""
        async with self.sessions() as db, db.begin():
            # locked: restart recovery may be ending it in another transaction (PostgreSQL)
            row = await db.get(Conferencecall, conferencecall_id, with_for_update=True)
            assert row is not None
            await _move_conferencecall(db, self._bus, row, (status,), utcnow())
        return row

    async def close_conferencecall(self, conference_id: str, conferencecall_id: str) -> bool:
        """The participant leaves: ``leaving`` then ``leaved`` (each published), and out of the
        conference's ``conferencecall_ids``. False when no such row was written.

        Idempotent, also across pods: both moves are made in one transaction with the row locked
        (``FOR UPDATE`` on PostgreSQL), so of two closers (a pod leg's participant is closed by the
        room's pod and by the call's pod; restart recovery: :func:`end_conferencecalls`) the second
        finds it ``leaved`` and changes and publishes nothing."""
        async with self.sessions() as db, db.begin():
            row = await db.get(Conferencecall, conferencecall_id, with_for_update=True)
            if row is None:
                return False
            if row.status == ConferencecallStatus.LEAVED:
                return True
            await _move_conferencecall(db, self._bus, row, _LEAVE, utcnow())
        await self.change(conference_id, "conference_updated", remove_call=conferencecall_id)
        return True

    async def load_conferencecall(self, conferencecall_id: str) -> Conferencecall | None:
        """Any conferencecall by id (no owner check: for the pods), None when absent."""
        async with self.sessions() as db:
            return await db.get(Conferencecall, conferencecall_id)

    async def conferencecall(self, customer_id: str, conferencecall_id: str) -> Conferencecall:
        async with self.sessions() as db:
            return await owned(db, Conferencecall, conferencecall_id, customer_id, what="conferencecall")

    async def list_conferencecalls(self, customer_id: str, page_size: int | None, page_token: str | None,
                                   conference_id: str | None = None) -> tuple[Sequence[Conferencecall], str]:
        stmt = select(Conferencecall).where(Conferencecall.customer_id == customer_id,
                                            Conferencecall.tm_delete.is_(None))
        if conference_id:
            stmt = stmt.where(Conferencecall.conference_id == conference_id)
        async with self.sessions() as db:
            return await paginate(db, stmt, Conferencecall, page_size, page_token)

    # ------------------------------------------------------------------ events

    async def _publish(self, row: Conference, event_type: str, db: AsyncSession | None = None) -> None:
        await self._bus.publish(_conference_event(row, event_type), session=db)

    async def _publish_call(self, row: Conferencecall, event_type: str, db: AsyncSession | None = None) -> None:
        await self._bus.publish(_conferencecall_event(row, event_type), session=db)


_LEAVE = (ConferencecallStatus.LEAVING, ConferencecallStatus.LEAVED)
"""A participant's moves when it leaves."""


def _conference_event(row: Conference, event_type: str) -> Event:
    return Event(event_type, row.customer_id, "conference", row.id, serialize.conference(row))


def _conferencecall_event(row: Conferencecall, event_type: str) -> Event:
    return Event(event_type, row.customer_id, "conferencecall", row.id, serialize.conferencecall(row))


async def _move_conferencecall(db: AsyncSession, bus: EventPublisher, row: Conferencecall,
                               statuses: Sequence[ConferencecallStatus], now: datetime) -> None:
    """Move ``row`` (locked in ``db``'s transaction) through ``statuses`` in order, each move only if its
    lifecycle allows it, publishing ``conferencecall_<status>`` for each one made, with the transaction."""
    for status in statuses:
        if may_move(row.status, status):
            row.status = status
            row.tm_update = now
            await bus.publish(_conferencecall_event(row, f"conferencecall_{status}"), session=db)


async def end_conferencecalls(db: AsyncSession, bus: EventPublisher, *, participants: ColumnElement[bool],
                              rooms: ColumnElement[bool]) -> tuple[int, int]:
    """Restart recovery (:mod:`voipbin.calls.recovery`): end, in ``db``'s open transaction (events
    published with it), the participants whose call or room died with its process, as a leave would.

    ``participants`` is a condition on ``Conferencecall`` (those of the calls ended), ``rooms`` one
    on ``Conference`` (the rooms the dead process mixed: everyone in them left). Each conferencecall
    either selects that has not left moves ``leaving`` → ``leaved`` (``conferencecall_leaving``,
    ``conferencecall_leaved``; only the moves still allowed) and out of its conference's
    ``conferencecall_ids`` (``conference_updated``, once per conference). A ``connect`` conference of
    ``rooms`` left empty after a participant terminates, as its last leave would have ended it
    (``terminating``, ``terminated`` with ``tm_end``: a ``conference_updated`` each); a ``conference``
    room stays up (the next pod that joins a call to it takes it over). Rows are locked (``FOR
    UPDATE`` on PostgreSQL) in id order, so a live pod's leave of the same participant waits and
    then finds it ``leaved``.

    Returns (conferencecalls ended, conferences terminated)."""
    now = utcnow()
    dead_rooms = select(Conference.id).where(rooms, Conference.status != ConferenceStatus.TERMINATED)
    members = (await db.scalars(select(Conferencecall).where(
        Conferencecall.status != ConferencecallStatus.LEAVED,
        or_(participants, Conferencecall.conference_id.in_(dead_rooms)))
        .order_by(Conferencecall.id).with_for_update())).all()
    left: dict[str, set[str]] = {}
    for member in members:
        await _move_conferencecall(db, bus, member, _LEAVE, now)
        left.setdefault(member.conference_id, set()).add(member.id)
    dead = set((await db.scalars(dead_rooms)).all())
    terminated = 0
    touched = sorted(left.keys() | dead)
    if not touched:
        return 0, 0
    for room in (await db.scalars(select(Conference).where(Conference.id.in_(touched))
                                  .order_by(Conference.id).with_for_update())).all():
        gone = left.get(room.id, set())
        # everyone in a dead room left (an id a crash left behind in its list too)
        keep = [] if room.id in dead else [i for i in room.conferencecall_ids if i not in gone]
        if keep != list(room.conferencecall_ids):
            room.conferencecall_ids = keep
            room.tm_update = now
            await bus.publish(_conference_event(room, "conference_updated"), session=db)
        if room.id not in dead or room.type != ConferenceType.CONNECT or not (gone or await db.scalar(
                select(exists().where(Conferencecall.conference_id == room.id)))):
            continue  # a live pod runs its own leave; a conference room stays; an unjoined connect room waits
        for status in (ConferenceStatus.TERMINATING, ConferenceStatus.TERMINATED):
            if may_move(room.status, status):
                room.status = status
                room.tm_update = now
                if status == ConferenceStatus.TERMINATED:
                    room.tm_end = now
                await bus.publish(_conference_event(room, "conference_updated"), session=db)
        terminated += 1
    return len(members), terminated
