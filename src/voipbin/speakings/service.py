"""Speakings (seed 004): streaming TTS sessions on live calls and conferences.

Lifecycle (``TtsManagerSpeakingStatus``): ``initiating`` (201 of ``POST /speakings``) →
``active`` once the provider is ready (``speaking_started``) → ``stopped`` (``/stop``, DELETE or
hangup: ``speaking_stopped``). ``/say`` queues text (played in order), ``/flush`` silences the
call within one 20 ms frame and empties the queue; both need ``active`` (else 400). One
speaking at a time per call or conference (409). Events: resource ``speaking``: ``speaking_created``,
``speaking_started``, ``speaking_stopped``, ``speaking_deleted``.

``direction`` (DESIGN.md "Terms"): ``out`` plays into what the endpoint hears (the call's
outbound mixer), ``in`` is injected on the endpoint's incoming side (``inbound_mix``: heard by
whoever the call is bridged to), ``both`` does both. Never heard by any ``in`` transcription
(:func:`voipbin.speakings.pipeline.sinks_for_direction`).

On a conference (``reference_type`` ``confbridge``) every participant hears the speaking, whatever
its ``direction``: in a room each participant is both "the caller" (``in``) and "the connected
party" (``out``) of seed 001's table, so no participant is left out by either; it plays into the
room's announcements (:class:`~voipbin.media.conference.ConferenceMixer`), which the room's ``out``
transcription hears. It stops when the conference ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from voipbin.calls.manager import CallManager
from voipbin.calls.status import CallStatus
from voipbin.common.clock import new_id, utcnow
from voipbin.common.references import reference
from voipbin.conferences.service import ConferenceService
from voipbin.common.errors import FailedPrecondition, InvalidArgument
from voipbin.events.model import Event, EventPublisher
from voipbin.speakings import serialize
from voipbin.speakings.status import SpeakingStatus, may_move
from voipbin.speakings.pipeline import SpeakingPipeline, sinks_for_direction
from voipbin.media.mixer import Mixer
from voipbin.speech.tts.base import Synthesizer, check_text
from voipbin.speech.tts.registry import TtsRegistry
from voipbin.store.models import Speaking
from voipbin.store.pagination import paginate
from voipbin.store.records import owned, soft_delete

log = structlog.get_logger(__name__)

DIRECTIONS = ("in", "out", "both")
DEFAULT_DIRECTION = "out"
DEFAULT_LANGUAGE = "en-US"


@dataclass
class _Live:
    """A speaking held by this process (initiating or active)."""

    id: str
    customer_id: str
    reference_type: str  # call or confbridge
    reference_id: str  # the call or conference id
    status: SpeakingStatus = SpeakingStatus.INITIATING
    pipeline: SpeakingPipeline | None = None
    starting: asyncio.Task[None] | None = None


class SpeakingService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], bus: EventPublisher, *, calls: CallManager,
                 conferences: ConferenceService, tts: TtsRegistry, pod_id: str) -> None:
        self._sessions = sessions
        self._bus = bus
        self._calls = calls
        self._conferences = conferences
        self._tts = tts
        self._pod_id = pod_id
        self._live: dict[str, _Live] = {}
        self._by_reference: dict[str, str] = {}  # call or conference id -> its speaking
        self._warm: set[str] = set()

    # ------------------------------------------------------------------ API operations

    async def create(self, customer_id: str, *, reference_type: str | None, reference_id: str | None,
                     language: str | None = None, provider: str | None = None, voice_id: str | None = None,
                     direction: str | None = None) -> Speaking:
        """``POST /speakings``: the speaking, ``initiating``; it turns ``active`` in the background.

        Raises InvalidArgument (400): bad field, call or conference not progressing, unknown
        provider or one without credentials, language/voice the provider lacks; NotFound
        (404): unknown or foreign call or conference; FailedPrecondition (409): the call or
        conference has a speaking already.
        """
        ref_type, ref_id = reference(reference_type, reference_id)
        if direction and direction not in DIRECTIONS:
            raise InvalidArgument("direction must be in, out or both", field="direction")
        direction = direction or DEFAULT_DIRECTION
        if ref_type == "call":
            call = await self._calls.get(customer_id, ref_id)
            if call.status != CallStatus.PROGRESSING:
                raise InvalidArgument(f"reference_id: the call is {call.status}, not progressing", field="reference_id")
        else:
            await self._conferences.room(customer_id, ref_id)  # 404, or 400 unless progressing
        # who speaks the language (the named provider, else the default or another engine); a voice loads once
        synthesizer, tag = await asyncio.to_thread(self._tts.provider_for, language or DEFAULT_LANGUAGE,
                                                   provider or None, voice_id or None)
        if ref_id in self._by_reference:
            what = "call" if ref_type == "call" else "conference"
            raise FailedPrecondition(f"another speaking is active on this {what}; stop it first", field="reference_id")
        now = utcnow()
        row = Speaking(id=new_id(), customer_id=customer_id, reference_type=ref_type, reference_id=ref_id,
                       language=tag, provider=synthesizer.name, voice_id=voice_id or "", direction=direction,
                       status=SpeakingStatus.INITIATING, pod_id=self._pod_id, tm_create=now, tm_update=now)
        live = _Live(row.id, customer_id, ref_type, ref_id)
        self._by_reference[ref_id] = row.id  # reserved before any await: a second create is a 409
        self._live[row.id] = live
        try:
            async with self._sessions() as db, db.begin():
                db.add(row)
        except BaseException:
            self._forget(live)
            raise
        await self._publish(row, "speaking_created")
        live.starting = asyncio.get_running_loop().create_task(self._activate(live, synthesizer, row))
        return row

    async def get(self, customer_id: str, speaking_id: str) -> Speaking:
        async with self._sessions() as db:
            return await owned(db, Speaking, speaking_id, customer_id, what="speaking")

    async def list(self, customer_id: str, page_size: int | None, page_token: str | None
                   ) -> tuple[Sequence[Speaking], str]:
        stmt = select(Speaking).where(Speaking.customer_id == customer_id, Speaking.tm_delete.is_(None))
        async with self._sessions() as db:
            return await paginate(db, stmt, Speaking, page_size, page_token)

    async def say(self, customer_id: str, speaking_id: str, text: Any) -> Speaking:
        """``POST /speakings/{id}/say``: queue 1-5000 characters. 400 when not ``active``."""
        if not isinstance(text, str):
            raise InvalidArgument("text is required", field="text")
        live = self._own_live(customer_id, speaking_id)
        if live is None:
            row = await self.get(customer_id, speaking_id)  # 404, or 400 below for a speaking not live here
        check_text(text)  # SpeechConfigError "text: ..." -> 400
        self._active(live).say(text)
        return await self.get(customer_id, speaking_id) if live is not None else row

    async def flush(self, customer_id: str, speaking_id: str) -> Speaking:
        """``POST /speakings/{id}/flush``: silence within one frame, queue emptied; stays ``active``.

        A speaking live in this process is flushed before any database read (barge-in latency).
        """
        live = self._own_live(customer_id, speaking_id)
        if live is None:
            await self.get(customer_id, speaking_id)
        self._active(live).flush()
        return await self.get(customer_id, speaking_id)

    async def stop(self, customer_id: str, speaking_id: str) -> Speaking:
        """``POST /speakings/{id}/stop``: ``stopped`` (``speaking_stopped``). Idempotent."""
        row = await self.get(customer_id, speaking_id)
        return await self._stop(row.id) if row.status != SpeakingStatus.STOPPED else row

    async def delete(self, customer_id: str, speaking_id: str) -> Speaking:
        """``DELETE /speakings/{id}``: stop if needed, then soft-delete (``speaking_deleted``)."""
        await self.stop(customer_id, speaking_id)
        async with self._sessions() as db, db.begin():
            row = await owned(db, Speaking, speaking_id, customer_id, what="speaking")
            soft_delete(row)
        await self._publish(row, "speaking_deleted")
        return row

    async def on_call_end(self, customer_id: str, call_id: str) -> None:
        """Call end listener: the call's speaking stops (before its media closes)."""
        speaking_id = self._by_reference.get(call_id)
        if speaking_id is not None:
            await self._stop(speaking_id)

    async def on_conference_end(self, customer_id: str, conference_id: str) -> None:
        """Conference end listener: the room's speaking stops (before its participants leave)."""
        await self.on_call_end(customer_id, conference_id)

    async def close(self) -> None:
        """Process shutdown: stop every speaking of this process."""
        await asyncio.gather(*(self._stop(i) for i in list(self._live)), return_exceptions=True)

    def pipeline_of(self, speaking_id: str) -> SpeakingPipeline | None:
        """The live pipeline (tests, bench)."""
        live = self._live.get(speaking_id)
        return live.pipeline if live is not None else None

    # ------------------------------------------------------------------ lifecycle

    async def _activate(self, live: _Live, synthesizer: Synthesizer, row: Speaking) -> None:
        """initiating -> active: the provider is warmed up, the players join the call's mixers."""
        try:
            if synthesizer.name not in self._warm:
                warm_up = getattr(synthesizer, "warm_up", None)
                if warm_up is not None:
                    await warm_up()
                self._warm.add(synthesizer.name)
            sinks = self._sinks(live, row.direction)
            if sinks is None or live.status != SpeakingStatus.INITIATING:
                return  # the call or room ended (its end listener stops this speaking)
            live.pipeline = SpeakingPipeline(synthesizer, sinks, language=row.language, voice=row.voice_id or None)
            live.pipeline.start()
            live.status = SpeakingStatus.ACTIVE
        except Exception:
            log.exception("speaking could not start", speaking_id=live.id)
            asyncio.get_running_loop().create_task(self._stop(live.id))
            return
        await self._set_status(live.id, SpeakingStatus.ACTIVE, "speaking_started")

    async def _stop(self, speaking_id: str) -> Speaking:
        live = self._live.get(speaking_id)
        if live is not None:
            live.status = SpeakingStatus.STOPPED
            self._forget(live)
            if live.starting is not None and live.starting is not asyncio.current_task():
                await asyncio.gather(live.starting, return_exceptions=True)  # its status write lands first
            if live.pipeline is not None:
                await live.pipeline.close()
        return await self._set_status(speaking_id, SpeakingStatus.STOPPED, "speaking_stopped")

    def _sinks(self, live: _Live, direction: str) -> list[Mixer] | None:
        """Where the speaking plays: the call's mixers for ``direction``, or the room's announcements
        (every participant); None once the call or room has ended."""
        if live.reference_type == "call":
            media = self._calls.media_of(live.reference_id)
            return None if media is None else sinks_for_direction(media, direction)
        room = self._conferences.live_room(live.reference_id)
        return None if room is None else [room.mixer.announcements]

    def _own_live(self, customer_id: str, speaking_id: str) -> _Live | None:
        live = self._live.get(speaking_id)
        return live if live is not None and live.customer_id == customer_id else None

    @staticmethod
    def _active(live: _Live | None) -> SpeakingPipeline:
        """The pipeline of an ``active`` speaking, else InvalidArgument (400)."""
        if live is None or live.status != SpeakingStatus.ACTIVE or live.pipeline is None:
            status = live.status if live is not None else SpeakingStatus.STOPPED
            raise InvalidArgument(f"the speaking is {status}, not active", field="status")
        return live.pipeline

    def _forget(self, live: _Live) -> None:
        self._live.pop(live.id, None)
        if self._by_reference.get(live.reference_id) == live.id:
            del self._by_reference[live.reference_id]

    async def _set_status(self, speaking_id: str, status: SpeakingStatus, event_type: str) -> Speaking:
        async with self._sessions() as db, db.begin():
            row = await db.get(Speaking, speaking_id)
            assert row is not None
            changed = may_move(row.status, status)  # stopped is final; a repeated move is no change
            if changed:
                row.status = status
                row.tm_update = utcnow()
        if changed:
            await self._publish(row, event_type)
        return row

    async def _publish(self, row: Speaking, event_type: str) -> None:
        await self._bus.publish(Event(event_type, row.customer_id, "speaking", row.id, serialize.speaking(row)))

