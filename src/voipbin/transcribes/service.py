"""Transcribes: start/stop live transcription of a call or a conference, store its transcripts,
publish events.

Lifecycle (``TranscribeManagerTranscribeStatus``): ``progressing`` → ``done`` (stop, flow
``transcribe_stop``, hangup). Events, resource ``transcribe`` with the transcribe's id:
``transcribe_created``, ``transcribe_progressing``, ``transcribe_speech_started``,
``transcribe_speech_interim``, ``transcribe_speech_ended``, ``transcript_created`` (seed 000:
topic ``customer_id:<id>:transcribe:<transcribe_id>``), ``transcript_dropped`` (ours: an utterance
that gets no transcript, e.g. shed under overload; the transcript's fields without ``message``, plus
``reason``: ``overloaded``, ``failed``, or ``no_speech`` for an utterance heard as no words), ``transcribe_done``, ``transcribe_deleted``;
``streaming_started`` / ``streaming_stopped`` (seed 001) when the speech stream of one direction
starts and stops, with upstream's ``Streaming`` shape: ``id`` (the ``streaming_id`` of that
direction's speech events), ``customer_id``, ``transcribe_id``, ``language``, ``direction``.

A conference (``reference_type`` ``confbridge``, or ``POST /conferences/{id}/transcribe_start``;
one progressing transcribe per conference): one STT stream per participant, so each transcript's
``call_id`` (an addition to upstream's shape) names the participant who spoke; ``out`` is what
the room's own speakings said (``call_id`` ""). A participant who joins later is transcribed from
then on. The conference's ``transcribe_id``/``transcribe_ids`` follow it; it ends with the room.

The audio side runs in this process (the media pod holding the call's RTP): see
:mod:`voipbin.transcribes.pipeline`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from voipbin.calls.manager import CallManager
from voipbin.calls.status import CallStatus
from voipbin.common.clock import format_ts, new_id, utcnow
from voipbin.common.references import reference
from voipbin.conferences.service import ConferenceService
from voipbin.common.errors import AlreadyExists, InvalidArgument
from voipbin.events.model import Event, EventPublisher
from voipbin.speech.stt.base import (
    DROP_NO_SPEECH,
    FinalTranscript,
    SpeechEnded,
    SpeechEvent,
    SpeechInterim,
    SpeechStarted,
    TranscriptDropped,
)
from voipbin.speech.stt.registry import SttRegistry
from voipbin.store.models import Transcribe, Transcript
from voipbin.store.pagination import paginate
from voipbin.transcribes import serialize
from voipbin.transcribes.status import TranscribeStatus, may_move
from voipbin.transcribes.pipeline import DirectionStream, RoomTranscribeSession, TranscribeSession
from voipbin.store.records import owned, soft_delete

log = structlog.get_logger(__name__)

DIRECTIONS = ("in", "out", "both")
#: request ``provider`` -> STT registry name ("" = the configured default engine)
PROVIDERS = {"": None, "whisper": "whisper", "gcp": "gcp", "aws": "aws"}


@dataclass
class _Live:
    """A transcribe running in this process."""

    id: str
    customer_id: str
    reference_type: str  # call or confbridge
    reference_id: str  # the call or conference id
    language: str
    started: datetime
    session: TranscribeSession | RoomTranscribeSession | None = None
    stopping: asyncio.Task[None] | None = None


_SPEECH_EVENTS = {SpeechStarted: "transcribe_speech_started", SpeechInterim: "transcribe_speech_interim",
                  SpeechEnded: "transcribe_speech_ended"}
"""The stream events a transcribe publishes (besides its transcripts), by event name."""

class TranscribeService:
    """Transcribe resources plus the live sessions of this process; implements ``TranscribeControl``."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], bus: EventPublisher, *, calls: CallManager,
                 conferences: ConferenceService, stt: SttRegistry, pod_id: str, finish_timeout_s: float = 5.0) -> None:
        self._sessions = sessions
        self._bus = bus
        self._calls = calls
        self._conferences = conferences
        self._stt = stt
        self._pod_id = pod_id
        self._finish_timeout_s = finish_timeout_s
        self._live: dict[str, _Live] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ API operations

    async def create(self, customer_id: str, *, reference_type: str | None, reference_id: str | None,
                     language: str | None, direction: str | None = None, provider: str | None = None,
                     on_end_flow_id: str | None = None, activeflow_id: str = "") -> Transcribe:
        """``POST /transcribes``: start transcribing a progressing call or conference; returns it
        ``progressing``.

        Raises InvalidArgument (400): bad field, reference type not supported, call or conference
        not progressing, language/provider the STT engine cannot serve; NotFound (404): unknown
        or foreign call or conference; AlreadyExists (409): the call already has a progressing
        transcribe in that language, or the conference one at all. ``direction`` missing or
        unknown means ``both`` (upstream behaviour).
        """
        ref_type, ref_id = reference(reference_type, reference_id, not_yet=("recording",))
        if not language:
            raise InvalidArgument("language is required (BCP 47, e.g. en-US)", field="language")
        if (provider or "") not in PROVIDERS:
            raise InvalidArgument(f"provider: unknown STT provider {provider!r} (gcp, aws or empty)", field="provider")
        end_flow = ""
        if on_end_flow_id:
            try:
                end_flow = str(uuid.UUID(on_end_flow_id))
            except ValueError as exc:
                raise InvalidArgument("on_end_flow_id must be a UUID", field="on_end_flow_id") from exc
        direction = direction if direction in DIRECTIONS else "both"
        if ref_type == "call":
            call = await self._calls.get(customer_id, ref_id)
            if call.status != CallStatus.PROGRESSING:
                raise InvalidArgument(f"reference_id: the call is {call.status}, not progressing", field="reference_id")
        else:
            await self._conferences.room(customer_id, ref_id)  # 404, or 400 unless progressing
        # who hears the language (the named provider, else the default or another engine); loads the model once
        recognizer, tag = await asyncio.to_thread(self._stt.provider_for, language, PROVIDERS[provider or ""])
        running = [lv for lv in self._live.values() if lv.reference_id == ref_id and lv.stopping is None]
        if ref_type == "confbridge" and running:
            raise AlreadyExists("the conference already has a progressing transcribe", field="reference_id")
        if any(lv.language == tag for lv in running):
            raise AlreadyExists(f"the call already has a progressing transcribe in {tag}", field="language")

        now = utcnow()
        row = Transcribe(id=new_id(), customer_id=customer_id, activeflow_id=activeflow_id, on_end_flow_id=end_flow,
                         reference_type=ref_type, reference_id=ref_id, status=TranscribeStatus.PROGRESSING, language=tag,
                         direction=direction, provider=recognizer.name, pod_id=self._pod_id, tm_create=now,
                         tm_update=now)
        async with self._sessions() as db, db.begin():
            db.add(row)
        await self._publish(row, "transcribe_created")
        if ref_type == "confbridge":
            await self._conferences.records.change(ref_id, "conference_updated", add_transcribe=row.id)
        # no await from the media check to registration: a hangup either happened already or will
        # find this transcribe through its end listener
        live = _Live(row.id, customer_id, ref_type, ref_id, tag, utcnow())
        live.session = self._open(live, recognizer, direction)
        if live.session is None:
            return await self._mark_done(row.id)
        self._live[row.id] = live
        live.session.attach()
        await self._publish_streams(live, "streaming_started")
        await self._publish(row, "transcribe_progressing")
        return row

    async def get(self, customer_id: str, transcribe_id: str) -> Transcribe:
        async with self._sessions() as db:
            return await owned(db, Transcribe, transcribe_id, customer_id, what="transcribe")

    async def list(self, customer_id: str, page_size: int | None, page_token: str | None, *,
                   reference_type: str | None = None, reference_id: str | None = None
                   ) -> tuple[Sequence[Transcribe], str]:
        """Newest first; ``reference_type`` and ``reference_id`` filter together (one alone -> 400)."""
        if bool(reference_type) != bool(reference_id):
            raise InvalidArgument("reference_type and reference_id must be given together",
                                  field="reference_id" if reference_type else "reference_type")
        stmt = select(Transcribe).where(Transcribe.customer_id == customer_id, Transcribe.tm_delete.is_(None))
        if reference_type:
            stmt = stmt.where(Transcribe.reference_type == reference_type, Transcribe.reference_id == reference_id)
        async with self._sessions() as db:
            return await paginate(db, stmt, Transcribe, page_size, page_token)

    async def stop(self, customer_id: str, transcribe_id: str) -> Transcribe:
        """``POST /transcribes/{id}/stop``: the last utterance is finalized, then ``done``. Idempotent."""
        row = await self.get(customer_id, transcribe_id)
        if row.status == TranscribeStatus.DONE:
            return row
        return await self._stop_live(transcribe_id) or await self._mark_done(transcribe_id)

    async def delete(self, customer_id: str, transcribe_id: str) -> Transcribe:
        """``DELETE /transcribes/{id}``: stop if running, then soft-delete (``transcribe_deleted``)."""
        await self.stop(customer_id, transcribe_id)
        async with self._sessions() as db, db.begin():
            row = await owned(db, Transcribe, transcribe_id, customer_id, what="transcribe")
            soft_delete(row)
        await self._publish(row, "transcribe_deleted")
        return row

    async def list_transcripts(self, customer_id: str, transcribe_id: str | None, page_size: int | None,
                               page_token: str | None) -> tuple[Sequence[Transcript], str]:
        """``GET /transcripts?transcribe_id=``: newest first. 400 without the id, 404 for a foreign one."""
        if not transcribe_id:
            raise InvalidArgument("transcribe_id is required", field="transcribe_id")
        await self.get(customer_id, transcribe_id)
        stmt = select(Transcript).where(Transcript.transcribe_id == transcribe_id, Transcript.tm_delete.is_(None))
        async with self._sessions() as db:
            return await paginate(db, stmt, Transcript, page_size, page_token)

    # ------------------------------------------------------------------ TranscribeControl (flow actions)

    async def start_for_call(self, customer_id: str, call_id: str, *, language: str, direction: str,
                             provider: str | None) -> None:
        """Flow ``transcribe_start``: the transcribe carries the call's activeflow id."""
        live_call = self._calls.live(call_id)
        # an error (call not progressing, language not served ...) propagates: the flow executor
        # publishes it as activeflow_action_failed
        await self.create(customer_id, reference_type="call", reference_id=call_id, language=language,
                          direction=direction, provider=provider,
                          activeflow_id=live_call.activeflow_id if live_call else "")

    async def stop_for_call(self, customer_id: str, call_id: str) -> None:
        """Flow ``transcribe_stop``: every transcribe running on the call ends (``done``)."""
        ids = [lv.id for lv in self._live.values() if lv.reference_id == call_id and lv.customer_id == customer_id]
        await asyncio.gather(*(self._stop_live(i) for i in ids))

    async def stop_for_conference(self, customer_id: str, conference_id: str) -> Transcribe:
        """``POST /conferences/{id}/transcribe_stop``: the room's transcribe ends (``done``).
        NotFound (404) for a missing or foreign conference; InvalidArgument (400) when none runs."""
        await self._conferences.get(customer_id, conference_id)
        live = next((lv for lv in self._live.values() if lv.reference_id == conference_id
                     and lv.customer_id == customer_id and lv.stopping is None), None)
        if live is None:
            raise InvalidArgument("no transcribe is progressing on the conference", field="id")
        row = await self._stop_live(live.id)
        assert row is not None
        return row

    async def on_call_end(self, customer_id: str, call_id: str) -> None:
        """Call end listener: detach at once (before the media closes), finalize in the background."""
        for live in [lv for lv in self._live.values() if lv.reference_id == call_id]:
            if live.session is not None:
                live.session.detach()
            self._spawn(self._stop_live(live.id))

    async def on_conference_end(self, customer_id: str, conference_id: str) -> None:
        """Conference end listener: as :meth:`on_call_end`, before the participants leave."""
        await self.on_call_end(customer_id, conference_id)

    async def close(self) -> None:
        """Process shutdown: stop every live transcribe and wait for the background work."""
        await asyncio.gather(*(self._stop_live(i) for i in list(self._live)), return_exceptions=True)
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    @property
    def running_sessions(self) -> int:
        """Live sessions with a task still running (0 once every call ended and stops finished)."""
        return sum(1 for lv in self._live.values() if lv.session is not None and lv.session.running)

    # ------------------------------------------------------------------ live sessions

    def _open(self, live: _Live, recognizer: Any, direction: str) -> TranscribeSession | RoomTranscribeSession | None:
        """The audio side of ``live``; None when its call or room has ended."""
        async def on_event(stream: DirectionStream, event: SpeechEvent) -> None:
            await self._on_speech(live, stream, event)

        if live.reference_type == "call":
            media = self._calls.media_of(live.reference_id)
            if media is None:
                return None
            return TranscribeSession(media, recognizer, language=live.language, direction=direction,
                                     on_event=on_event, call_id=live.reference_id)
        room = self._conferences.live_room(live.reference_id)
        if room is None:
            return None

        def on_stream(stream: DirectionStream, started: bool) -> None:
            self._spawn(self._publish_stream(live, stream, "streaming_started" if started else "streaming_stopped"))

        return RoomTranscribeSession(room, recognizer, language=live.language, direction=direction, on_event=on_event,
                                     on_stream=on_stream, finish_timeout_s=self._finish_timeout_s)

    async def _stop_live(self, transcribe_id: str) -> Transcribe | None:
        """Stop a live transcribe (once; concurrent callers await the same stop). None if not live."""
        live = self._live.get(transcribe_id)
        if live is None:
            return None
        if live.stopping is None:
            live.stopping = asyncio.get_running_loop().create_task(self._finish(live))
        await asyncio.shield(live.stopping)
        return await self._load(transcribe_id)

    async def _finish(self, live: _Live) -> None:
        try:
            if live.session is not None:
                await live.session.finish(self._finish_timeout_s)
                await self._publish_streams(live, "streaming_stopped")
        finally:
            self._live.pop(live.id, None)
            await self._mark_done(live.id)
            if live.reference_type == "confbridge":
                await self._conferences.records.change(live.reference_id, "conference_updated",
                                                       end_transcribe=live.id)

    async def _mark_done(self, transcribe_id: str) -> Transcribe:
        async with self._sessions() as db, db.begin():
            row = await db.get(Transcribe, transcribe_id)
            assert row is not None
            changed = may_move(row.status, TranscribeStatus.DONE)  # done is final
            if changed:
                row.status = TranscribeStatus.DONE
                row.tm_update = utcnow()
        if changed:
            await self._publish(row, "transcribe_done")
        return row

    async def _on_speech(self, live: _Live, stream: DirectionStream, event: SpeechEvent) -> None:
        if isinstance(event, FinalTranscript):
            if event.text:
                await self._store_transcript(live, stream, event)
            else:  # the recognizer heard no words (noise, a cough): said, so every utterance is accounted for
                await self._publish_dropped(live, stream, TranscriptDropped(
                    DROP_NO_SPEECH, event.start_s, event.end_s, event.language))
            return
        if isinstance(event, TranscriptDropped):
            await self._publish_dropped(live, stream, event)
            return
        kind = _SPEECH_EVENTS.get(type(event))
        if kind is None:
            return  # SpeechPaused / SpeechResumed: for consumers that prepare a reply (ai_talk), not published
        now = utcnow()
        data: dict[str, Any] = {"id": new_id(), "customer_id": live.customer_id, "streaming_id": stream.streaming_id,
                                "transcribe_id": live.id, "direction": stream.direction}
        if isinstance(event, SpeechInterim):
            data["message"] = event.text
        data["tm_event"] = format_ts(live.started + timedelta(seconds=event.offset_s))
        data["tm_create"] = format_ts(now)
        await self._bus.publish(Event(kind, live.customer_id, "transcribe", live.id, data))

    async def _store_transcript(self, live: _Live, stream: DirectionStream, final: FinalTranscript) -> None:
        """The transcript row and its ``transcript_created`` webhook row in one transaction (one commit
        between the end of speech and the event, not two); the live event follows the commit."""
        row = Transcript(id=new_id(), customer_id=live.customer_id, transcribe_id=live.id, direction=stream.direction,
                         call_id=stream.call_id, message=final.text,
                         tm_transcript=live.started + timedelta(seconds=final.start_s),
                         tm_create=utcnow())
        async with self._sessions() as db, db.begin():
            db.add(row)
            await self._bus.publish(Event("transcript_created", live.customer_id, "transcribe", live.id,
                                          serialize.transcript(row)), session=db)

    async def _publish_dropped(self, live: _Live, stream: DirectionStream, dropped: TranscriptDropped) -> None:
        """``transcript_dropped``: the utterance's transcript fields (no row is stored) and why."""
        data = {"id": new_id(), "customer_id": live.customer_id, "transcribe_id": live.id,
                "direction": stream.direction, "call_id": stream.call_id, "reason": dropped.reason,
                "tm_transcript": format_ts(live.started + timedelta(seconds=dropped.start_s)),
                "tm_create": format_ts(utcnow())}
        await self._bus.publish(Event("transcript_dropped", live.customer_id, "transcribe", live.id, data))

    # ------------------------------------------------------------------ helpers

    async def _load(self, transcribe_id: str) -> Transcribe:
        async with self._sessions() as db:
            row = await db.get(Transcribe, transcribe_id)
        assert row is not None
        return row

    async def _publish_streams(self, live: _Live, event_type: str) -> None:
        """``streaming_started``/``streaming_stopped`` for each direction's speech stream (upstream
        publishes its ``Streaming`` struct; ``id`` is the ``streaming_id`` of the speech events)."""
        assert live.session is not None
        for stream in list(live.session.streams.values()):
            await self._publish_stream(live, stream, event_type)

    async def _publish_stream(self, live: _Live, stream: DirectionStream, event_type: str) -> None:
        data = {"id": stream.streaming_id, "customer_id": live.customer_id, "transcribe_id": live.id,
                "language": live.language, "direction": stream.direction}
        if live.reference_type == "confbridge" and stream.call_id:  # whose voice (a room's participant)
            data["call_id"] = stream.call_id
        await self._bus.publish(Event(event_type, live.customer_id, "transcribe", live.id, data))

    async def _publish(self, row: Transcribe, event_type: str) -> None:
        await self._bus.publish(Event(event_type, row.customer_id, "transcribe", row.id, serialize.transcribe(row)))

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
