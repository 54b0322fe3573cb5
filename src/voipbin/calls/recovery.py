"""Restart recovery: what a process held when it died is ended, not left live forever (issue 14).

Every process heartbeats its ``pod_id`` in the ``pods`` table (``heartbeat_seconds``). Calls,
conferences (their rooms), aicalls, speakings and transcribes carry the ``pod_id`` of the process
that drives them. A process that starts reconciles what it held itself (a stable
``VOIPBIN_POD_ID``), rows with no pod (written before pods existed), and what any pod whose
heartbeat is older than ``expire_seconds`` held; on a single-process deployment (SQLite) no other
process can hold anything, so every unfinished row is reconciled at start. While running, each
heartbeat also reaps pods that expired since.

Reconciling ends, in one transaction with their events (webhook rows commit with the change):

* calls not ``hangup`` -> ``hangup``, ``hangup_by`` ``local``, ``hangup_reason`` ``failed``
  (``call_hangup``): their media is gone with the process;
* their activeflows -> ``ended`` (``activeflow_deleted``), their groupcalls -> ``hangup`` once
  every call of the group is (``groupcall_hangup``);
* their conferencecalls, and every participant of a room the dead process mixed, not ``leaved`` ->
  ``leaving`` -> ``leaved`` (``conferencecall_leaving``, ``conferencecall_leaved``), out of their
  conference's ``conferencecall_ids`` (``conference_updated``); a ``connect`` room the dead
  process mixed, left empty, -> ``terminating`` -> ``terminated`` (``conference_updated`` each), as
  its last leave would have ended it; a ``conference`` room stays up (the next pod that joins a call
  to it takes it over): :func:`~voipbin.conferences.records.end_conferencecalls`. A room on a live
  pod that still mixes a dead pod's participant (a pod leg) needs no command: the leg carries RTP
  always, so the room drops it once no RTP came for the pod expiry and runs its own leave there (a
  ``connect`` room then releases the other party and ends); finding the row ``leaved``, that
  leave publishes nothing more;
* aicalls of the dead process or of its calls, not ``terminated`` -> ``terminating`` ->
  ``terminated`` (``aicall_status_terminating``, ``aicall_status_terminated``):
  :func:`~voipbin.ai.records.end_aicalls`;
* speakings not ``stopped`` -> ``stopped`` (``speaking_stopped``); transcribes not ``done`` ->
  ``done`` (``transcribe_done``).

A dead pod is claimed by deleting its ``pods`` row in that transaction, so two processes never
reconcile the same pod twice.

Dependencies: this module ends rows of the contexts built on calls (speakings, transcribes,
conferences, AI) through their stored side only (serializers, ``records`` functions that take the
open transaction), never their services, so the import graph stays acyclic
(``tests/unit/test_import_graph.py``).

Scale-out (issue 19): only processes that ``reaps`` (roles ``worker`` and ``all``) end what dead
pods held; ``api`` and ``media`` pods heartbeat only (a media pod still ends, at its start, what it
held itself before a restart under the same ``pod_id``). Each heartbeat also records the pod's
role and what ``describe()`` returns (a media pod's SIP address and live-call count).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import ColumnElement, delete, false, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from voipbin.ai.records import end_aicalls
from voipbin.calls import serialize
from voipbin.calls.hangup import POD_LOST
from voipbin.calls.status import FINAL_CALL_STATUSES, ActiveflowStatus, CallStatus, GroupcallStatus
from voipbin.common.clock import utcnow
from voipbin.conferences.records import end_conferencecalls
from voipbin.events.model import Event, EventPublisher
from voipbin.speakings.serialize import speaking as serialize_speaking
from voipbin.speakings.status import SpeakingStatus
from voipbin.store.models import (
    Activeflow, Aicall, Call, Conference, Conferencecall, Groupcall, Pod, Speaking, Transcribe,
)
from voipbin.transcribes.serialize import transcribe as serialize_transcribe
from voipbin.transcribes.status import TranscribeStatus

log = structlog.get_logger(__name__)


@dataclass
class Reconciled:
    """How many resources one reconciliation ended."""

    calls: int = 0
    activeflows: int = 0
    groupcalls: int = 0
    conferencecalls: int = 0
    conferences: int = 0  # connect rooms terminated
    aicalls: int = 0
    speakings: int = 0
    transcribes: int = 0

    def __bool__(self) -> bool:
        return any(self.__dict__.values())


class Reconciler:
    """Heartbeats this process's pod and ends what dead pods held (see the module docstring)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], bus: EventPublisher, *, pod_id: str,
                 role: str = "all", reaps: bool = True, describe: Callable[[], dict[str, Any]] | None = None,
                 heartbeat_seconds: float = 2.0, expire_seconds: float = 10.0, single_process: bool = False) -> None:
        self._sessions = sessions
        self._bus = bus
        self.pod_id = pod_id
        self.role = role
        self.reaps = reaps
        self._describe = describe or dict
        self.heartbeat_seconds = heartbeat_seconds
        self.expire_seconds = expire_seconds
        self.single_process = single_process
        self._task: asyncio.Task[None] | None = None

    async def start(self, *, reconcile: bool = True) -> Reconciled:
        """Reconcile what no live process holds (unless the caller did: ``reconcile=False``), write the
        first heartbeat (from then on other pods see this one, and send it calls), start heartbeating."""
        done = await self.reconcile_at_start() if reconcile else Reconciled()
        await self.heartbeat()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="pod-heartbeat")
        return done

    async def stop(self) -> None:
        """Stop heartbeating and remove this pod's row (a clean exit holds nothing)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        async with self._sessions() as db, db.begin():
            await db.execute(delete(Pod).where(Pod.id == self.pod_id))

    async def heartbeat(self) -> None:
        """Write ``now`` as this pod's heartbeat, with ``describe()`` (the row is created on the first beat)."""
        now = utcnow()
        state = self._describe()
        async with self._sessions() as db, db.begin():
            result = await db.execute(update(Pod).where(Pod.id == self.pod_id).values(tm_heartbeat=now, **state))
            if not result.rowcount:  # type: ignore[attr-defined]
                db.add(Pod(id=self.pod_id, role=self.role, tm_heartbeat=now, tm_create=now, **state))

    async def reconcile_at_start(self) -> Reconciled:
        if self.single_process:
            async with self._sessions() as db, db.begin():
                await db.execute(delete(Pod).where(Pod.id != self.pod_id))
                done = await self._end(db, lambda model: true())
        else:
            async with self._sessions() as db, db.begin():
                done = await self._end(db, _pod_in([self.pod_id, ""]))
            if self.reaps:
                done = _add(done, await self.reap_expired())
        if done:
            log.warning("ended what a stopped process left live", **done.__dict__)
        return done

    async def reap_expired(self) -> Reconciled:
        """End what pods with an expired heartbeat held; each dead pod is claimed by one process."""
        cutoff = utcnow() - timedelta(seconds=self.expire_seconds)
        async with self._sessions() as db:
            expired = (await db.scalars(select(Pod.id).where(Pod.tm_heartbeat < cutoff,
                                                                  Pod.id != self.pod_id))).all()
        total = Reconciled()
        for pod_id in expired:
            async with self._sessions() as db, db.begin():
                claimed = await db.execute(delete(Pod).where(Pod.id == pod_id, Pod.tm_heartbeat < cutoff))
                if claimed.rowcount:  # type: ignore[attr-defined]
                    total = _add(total, await self._end(db, _pod_in([pod_id])))
                    log.warning("pod heartbeat expired; its calls and sessions ended", pod_id=pod_id)
        return total

    async def end_orphan(self, call: Call) -> bool:
        """End ``call`` if no live process drives it (its pod is this one, gone, or expired).

        The caller knows this process does not drive it. Returns True when it was ended here."""
        if call.pod_id and call.pod_id != self.pod_id and not self.single_process:
            cutoff = utcnow() - timedelta(seconds=self.expire_seconds)
            async with self._sessions() as db:
                alive = await db.scalar(select(Pod.id).where(Pod.id == call.pod_id, Pod.tm_heartbeat >= cutoff))
            if alive is not None:
                return False
        async with self._sessions() as db, db.begin():
            done = await self._end(db, lambda model: false(), call_ids=[call.id])
        return done.calls > 0

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            try:
                await self.heartbeat()
                if self.reaps and not self.single_process:
                    await self.reap_expired()
            except Exception:
                log.exception("pod heartbeat failed")

    async def _end(self, db: AsyncSession, held: Callable[[Any], ColumnElement[bool]], *,
                   call_ids: list[str] | None = None) -> Reconciled:
        """End (in ``db``'s transaction, a DB session) the unfinished resources that ``held(model)`` selects
        (a condition on ``pod_id``; for conferences, the rooms that died: everyone in them left) or that
        belong to the calls ended here (``held(Call)`` and ``call_ids``); publishes their events in the
        same transaction."""
        now = utcnow()
        done = Reconciled()
        call_cond = held(Call)
        if call_ids:
            call_cond = or_(call_cond, Call.id.in_(call_ids))
        calls = (await db.scalars(select(Call).where(Call.status.not_in(FINAL_CALL_STATUSES), call_cond))).all()
        ended_ids = [c.id for c in calls]
        for call in calls:
            call.status, call.hangup_by, call.hangup_reason = CallStatus.HANGUP, POD_LOST.by, POD_LOST.reason
            call.tm_hangup = call.tm_update = now
            await self._publish(db, "call_hangup", "call", call.customer_id, call.id, serialize.call(call))
        done.calls = len(calls)
        if ended_ids:
            afs = (await db.scalars(select(Activeflow).where(
                Activeflow.reference_type == "call", Activeflow.reference_id.in_(ended_ids),
                Activeflow.status != ActiveflowStatus.ENDED))).all()
            for af in afs:
                af.status = ActiveflowStatus.ENDED
                af.tm_update = af.tm_delete = now
                await self._publish(db, "activeflow_deleted", "activeflow", af.customer_id, af.id,
                                    serialize.activeflow(af))
            done.activeflows = len(afs)
            group_ids = {c.groupcall_id for c in calls if c.groupcall_id}
            for group in (await db.scalars(select(Groupcall).where(
                    Groupcall.id.in_(group_ids), Groupcall.status != GroupcallStatus.HANGUP))).all():
                statuses = (await db.scalars(select(Call.status).where(Call.id.in_(group.call_ids)))).all()
                if all(s in FINAL_CALL_STATUSES for s in statuses):
                    group.status = GroupcallStatus.HANGUP
                    group.tm_update = now
                    await self._publish(db, "groupcall_hangup", "groupcall", group.customer_id, group.id,
                                        serialize.groupcall(group))
                    done.groupcalls += 1
        of_calls = (Conferencecall.reference_type == "call") & Conferencecall.reference_id.in_(ended_ids) \
            if ended_ids else false()
        done.conferencecalls, done.conferences = await end_conferencecalls(
            db, self._bus, participants=of_calls, rooms=held(Conference))
        ai_cond = held(Aicall)
        if ended_ids:
            ai_cond = or_(ai_cond, (Aicall.reference_type == "call") & Aicall.reference_id.in_(ended_ids))
        done.aicalls = await end_aicalls(db, self._bus, ai_cond)
        for model, final, event_type, shape in (
                (Speaking, SpeakingStatus.STOPPED, "speaking_stopped", serialize_speaking),
                (Transcribe, TranscribeStatus.DONE, "transcribe_done", serialize_transcribe)):
            cond = held(model)
            if ended_ids:
                cond = or_(cond, model.reference_id.in_(ended_ids))
            rows = (await db.scalars(select(model).where(model.status != final, cond))).all()
            for row in rows:
                row.status = final
                row.tm_update = now
                await self._publish(db, event_type, model.__tablename__[:-1], row.customer_id, row.id, shape(row))
            setattr(done, model.__tablename__, len(rows))
        return done

    async def _publish(self, db: AsyncSession, event_type: str, resource: str, customer_id: str,
                       resource_id: str, data: dict[str, Any]) -> None:
        await self._bus.publish(Event(event_type, customer_id, resource, resource_id, data),
                                session=db)  # type: ignore[call-arg]


def _pod_in(pod_ids: list[str]) -> Callable[[Any], ColumnElement[bool]]:
    """``model.pod_id`` in ``pod_ids`` (calls, conferences, aicalls, speakings and transcribes all carry it)."""
    return lambda model: model.pod_id.in_(pod_ids)


def _add(a: Reconciled, b: Reconciled) -> Reconciled:
    return Reconciled(*(x + y for x, y in zip(a.__dict__.values(), b.__dict__.values(), strict=True)))
