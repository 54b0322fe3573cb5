"""Which pod holds a resource, and which media pod takes a new call (issue 19), read from the store.

A resource's row carries the ``pod_id`` of the process that holds it live. A finished one (a call
``hangup``, a speaking ``stopped``, ...) is held by nobody: its commands run on the asking pod,
against the store, exactly as they did in one process. Media pods heartbeat their live-call count
(``pods.load``); a new call goes to the live media pod (``media`` or ``all``) with the lowest
load, one whose heartbeat is older than ``expire_seconds`` is skipped.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from voipbin.ai.status import AicallStatus
from voipbin.calls.status import FINAL_CALL_STATUSES, ActiveflowStatus
from voipbin.common.clock import utcnow
from voipbin.conferences.status import ConferenceStatus
from voipbin.speakings.status import SpeakingStatus
from voipbin.store.models import Activeflow, Aicall, Call, Conference, Conferencecall, Groupcall, Pod, Speaking, Transcribe
from voipbin.transcribes.status import TranscribeStatus

MEDIA_ROLES = ("media", "all")
"""Roles of the pods that run SIP and media (and so hold calls, rooms and speech sessions)."""

_HELD: dict[str, tuple[Any, frozenset[str]]] = {
    "call": (Call, frozenset(FINAL_CALL_STATUSES)),
    "speaking": (Speaking, frozenset({SpeakingStatus.STOPPED})),
    "transcribe": (Transcribe, frozenset({TranscribeStatus.DONE})),
    "conference": (Conference, frozenset({ConferenceStatus.TERMINATED})),
    "aicall": (Aicall, frozenset({AicallStatus.TERMINATED})),
}


class PodDirectory:
    """Reads of ``pods`` and of the ``pod_id`` of held resources (``sessions``: the store)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, expire_seconds: float) -> None:
        self._sessions = sessions
        self.expire_seconds = expire_seconds
        self._placed: dict[str, tuple[Any, int]] = {}  # media pod -> (its heartbeat seen, calls placed since)

    async def holder(self, kind: str, resource_id: str) -> str:
        """The ``pod_id`` holding the unfinished resource ``kind``/``resource_id``, else ``""``.

        ``kind``: call, speaking, transcribe, conference, aicall; conferencecall (its
        conference's pod), groupcall (its calls' pod), activeflow (its call's pod). An unknown
        id is ``""`` too (the local command answers its 404)."""
        async with self._sessions() as db:
            if kind in _HELD:
                model, final = _HELD[kind]
                row = (await db.execute(select(model.pod_id, model.status).where(model.id == resource_id))).first()
                return row[0] if row is not None and row[1] not in final else ""
            if kind == "conferencecall":
                conference_id = await db.scalar(select(Conferencecall.conference_id).where(
                    Conferencecall.id == resource_id))
            elif kind == "groupcall":
                call_ids = await db.scalar(select(Groupcall.call_ids).where(Groupcall.id == resource_id))
                call_id = call_ids[0] if call_ids else None
            elif kind == "activeflow":
                row = (await db.execute(select(Activeflow.reference_type, Activeflow.reference_id, Activeflow.status)
                                        .where(Activeflow.id == resource_id))).first()
                call_id = row[1] if row is not None and row[0] == "call" and row[2] != ActiveflowStatus.ENDED else None
            else:
                raise ValueError(f"unknown resource kind {kind!r}")
        if kind == "conferencecall":
            return await self.holder("conference", conference_id) if conference_id else ""
        return await self.holder("call", call_id) if call_id else ""

    async def alive(self, pod_id: str) -> bool:
        """Whether ``pod_id`` heartbeat within ``expire_seconds``."""
        cutoff = utcnow() - timedelta(seconds=self.expire_seconds)
        async with self._sessions() as db:
            return await db.scalar(select(Pod.id).where(Pod.id == pod_id, Pod.tm_heartbeat >= cutoff)) is not None

    async def sip_address(self, pod_id: str) -> tuple[str, int] | None:
        """The SIP address (``sip_host``, ``sip_port``) a live media pod heartbeats, else None."""
        cutoff = utcnow() - timedelta(seconds=self.expire_seconds)
        async with self._sessions() as db:
            row = (await db.execute(select(Pod.sip_host, Pod.sip_port).where(
                Pod.id == pod_id, Pod.role.in_(MEDIA_ROLES), Pod.tm_heartbeat >= cutoff))).first()
        return (row[0], row[1]) if row is not None and row[0] and row[1] else None

    async def pod_at(self, host: str, port: int) -> str | None:
        """The live media pod whose SIP address is ``host:port`` (a request's source), else None."""
        cutoff = utcnow() - timedelta(seconds=self.expire_seconds)
        async with self._sessions() as db:
            return await db.scalar(select(Pod.id).where(
                Pod.sip_host == host, Pod.sip_port == port, Pod.role.in_(MEDIA_ROLES), Pod.tm_heartbeat >= cutoff)
                .limit(1))

    async def least_loaded_media(self, exclude: list[str] | tuple[str, ...] = ()) -> str | None:
        """The live media pod (not in ``exclude``) with the fewest live calls, None when there is none.

        The load is the pod's count at its last heartbeat plus the calls this process placed on it
        since that heartbeat (a burst of calls between two beats is spread, not piled on one pod);
        ties go to the pod that has been up longest."""
        cutoff = utcnow() - timedelta(seconds=self.expire_seconds)
        async with self._sessions() as db:
            rows = (await db.execute(select(Pod.id, Pod.load, Pod.tm_heartbeat).where(
                Pod.role.in_(MEDIA_ROLES), Pod.tm_heartbeat >= cutoff, Pod.id.not_in(list(exclude)))
                .order_by(Pod.tm_create, Pod.id))).all()
        best: tuple[int, str] | None = None
        for pod_id, load, beat in rows:
            seen, placed = self._placed.get(pod_id, (beat, 0))
            if seen != beat:  # a new heartbeat counts what was placed before it
                placed = 0
            self._placed[pod_id] = (beat, placed)
            if best is None or load + placed < best[0]:
                best = (load + placed, pod_id)
        if best is None:
            return None
        beat, placed = self._placed[best[1]]
        self._placed[best[1]] = (beat, placed + 1)
        return best[1]
