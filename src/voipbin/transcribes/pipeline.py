"""The media-pod side of a transcribe: call or conference audio -> STT streams -> events.

Stages (pipecat style, one input and one output each)::

    "in":  RtpSession inbound consumer ─┐
                                        ├─ DirectionStream: TranscriptionStream ─ events ─> on_event
    "out": RtpSession outbound tap ─────┘

``in`` is what the endpoint sends (DESIGN.md "Terms"), ``out`` every frame we send it (talk,
play, speakings). Stopping detaches the taps first (no more audio reaches STT), then lets each
stream finalize the utterance in progress for at most ``timeout_s``, then aborts it: once
:meth:`TranscribeSession.finish` returns, no task of the session is left running.

A conference (:class:`RoomTranscribeSession`): one ``in`` stream per participant, fed with that
participant's own voice only (so each transcript names who spoke: the stream's ``call_id``), added
when a participant joins and finalized when it leaves; one ``out`` stream of what the room's own
speakings said (its announcements).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

from voipbin.common.clock import new_id
from voipbin.conferences.room import Room
from voipbin.media.session import RtpSession
from voipbin.speech.stt.base import Recognizer, SpeechEvent, TranscriptionStream

log = structlog.get_logger(__name__)

DIRECTIONS_OF = {"in": ("in",), "out": ("out",), "both": ("in", "out")}

OnEvent = Callable[["DirectionStream", SpeechEvent], Awaitable[None]]


class DirectionStream:
    """One direction's STT stream and the task that hands its events to ``on_event`` in order.
    ``call_id``: whose audio it is ("" for a conference's announcements)."""

    def __init__(self, direction: str, stream: TranscriptionStream, on_event: OnEvent, *, call_id: str = "") -> None:
        self.direction = direction
        self.call_id = call_id
        self.streaming_id = new_id()
        self._stream = stream
        self._on_event = on_event
        self._task = asyncio.get_running_loop().create_task(self._pump())

    def feed(self, frame: bytes) -> None:
        """A 20 ms PCM16 frame (called from the media clock or the receive path: never blocks)."""
        try:
            self._stream.feed(frame)
        except ValueError:
            pass  # closed: the tap is being removed

    async def _pump(self) -> None:
        try:
            async for event in self._stream.events():
                try:
                    await self._on_event(self, event)
                except Exception:
                    log.exception("transcribe event handler failed", direction=self.direction)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("transcription stream failed", direction=self.direction)

    async def finish(self, timeout_s: float) -> None:
        """End of audio: deliver the last utterance's events (at most ``timeout_s``), then abort."""
        self._stream.close()
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(self._task), timeout_s)
        await self._stream.aclose()
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    @property
    def running(self) -> bool:
        return not self._task.done()


class TranscribeSession:
    """The STT streams of one transcribe, attached to one call's RTP session."""

    def __init__(self, media: RtpSession, recognizer: Recognizer, *, language: str, direction: str,
                 on_event: OnEvent, call_id: str = "") -> None:
        rate = _rate(media)
        self._media = media
        self.streams = {d: DirectionStream(d, recognizer.open_stream(language=language, sample_rate=rate), on_event,
                                           call_id=call_id)
                        for d in DIRECTIONS_OF[direction]}
        self._attached = False

    def attach(self) -> None:
        """Start feeding: "in" from the inbound consumers, "out" from the outbound taps."""
        if "in" in self.streams:
            self._media.add_inbound_consumer(self.streams["in"].feed)
        if "out" in self.streams:
            self._media.add_outbound_tap(self.streams["out"].feed)
        self._attached = True

    def detach(self) -> None:
        """Stop feeding (idempotent)."""
        if not self._attached:
            return
        self._attached = False
        if "in" in self.streams:
            self._media.remove_inbound_consumer(self.streams["in"].feed)
        if "out" in self.streams:
            self._media.remove_outbound_tap(self.streams["out"].feed)

    async def finish(self, timeout_s: float) -> None:
        """Detach, then finalize every stream (see :meth:`DirectionStream.finish`)."""
        self.detach()
        await asyncio.gather(*(s.finish(timeout_s) for s in self.streams.values()))

    @property
    def running(self) -> bool:
        return any(s.running for s in self.streams.values())


class RoomTranscribeSession:
    """The STT streams of one transcribe of a conference room (see the module docstring).

    ``on_stream(stream, started)`` is called when a participant's stream starts (a join) and when
    it has stopped (a leave, after its last utterance was delivered), so ``streaming_*`` events follow
    membership; the streams present at :meth:`attach` are the caller's to announce.
    """

    def __init__(self, room: Room, recognizer: Recognizer, *, language: str, direction: str, on_event: OnEvent,
                 on_stream: Callable[[DirectionStream, bool], None], finish_timeout_s: float) -> None:
        self._room = room
        self._recognizer = recognizer
        self._language = language
        self._directions = DIRECTIONS_OF[direction]
        self._on_event = on_event
        self._on_stream = on_stream
        self._finish_timeout_s = finish_timeout_s
        self.streams: dict[str, DirectionStream] = {}  # "out", or "in:<call id>"
        self._media: dict[str, RtpSession] = {}
        self._leaving: set[asyncio.Task[None]] = set()
        self._attached = False

    def attach(self) -> None:
        """Start feeding: the room's announcements, every participant's voice, and later joiners'."""
        if "out" in self._directions:
            out = DirectionStream("out", self._recognizer.open_stream(language=self._language, sample_rate=8000),
                                  self._on_event)
            self.streams["out"] = out
            self._room.mixer.add_announcement_tap(out.feed)
        if "in" in self._directions:
            for call_id, participant in self._room.participants.items():
                self._add(call_id, participant.media)
            self._room.add_listener(self)
        self._attached = True

    def participant_joined(self, call_id: str, media: RtpSession) -> None:
        if self._attached and f"in:{call_id}" not in self.streams:
            self._on_stream(self._add(call_id, media), True)

    def participant_left(self, call_id: str) -> None:
        stream = self._remove(call_id)
        if stream is not None:
            task = asyncio.get_running_loop().create_task(self._finish_left(stream))
            self._leaving.add(task)
            task.add_done_callback(self._leaving.discard)

    def _add(self, call_id: str, media: RtpSession) -> DirectionStream:
        stream = DirectionStream("in", self._recognizer.open_stream(language=self._language, sample_rate=_rate(media)),
                                 self._on_event, call_id=call_id)
        self.streams[f"in:{call_id}"] = stream
        self._media[call_id] = media
        media.add_inbound_consumer(stream.feed)
        return stream

    def _remove(self, call_id: str) -> DirectionStream | None:
        stream = self.streams.pop(f"in:{call_id}", None)
        media = self._media.pop(call_id, None)
        if stream is not None and media is not None:
            media.remove_inbound_consumer(stream.feed)
        return stream

    async def _finish_left(self, stream: DirectionStream) -> None:
        await stream.finish(self._finish_timeout_s)
        self._on_stream(stream, False)

    def detach(self) -> None:
        """Stop feeding every stream (idempotent); nothing joins any more."""
        if not self._attached:
            return
        self._attached = False
        self._room.remove_listener(self)
        out = self.streams.get("out")
        if out is not None:
            self._room.mixer.remove_announcement_tap(out.feed)
        for call_id in list(self._media):
            stream = self.streams.get(f"in:{call_id}")
            media = self._media.pop(call_id)
            if stream is not None:
                media.remove_inbound_consumer(stream.feed)

    async def finish(self, timeout_s: float) -> None:
        """Detach, then finalize every stream, and wait for those of participants who left."""
        self.detach()
        await asyncio.gather(*(s.finish(timeout_s) for s in self.streams.values()), *list(self._leaving))

    @property
    def running(self) -> bool:
        return any(s.running for s in self.streams.values()) or bool(self._leaving)


def _rate(media: RtpSession) -> int:
    codec = media.codec
    return codec.clock_rate if codec is not None else 8000
