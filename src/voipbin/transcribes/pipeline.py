"""The media-pod side of a transcribe: call audio -> one STT stream per direction -> events.

Stages (pipecat style, one input and one output each)::

    "in":  RtpSession inbound consumer ─┐
                                        ├─ DirectionStream: TranscriptionStream ─ events ─> on_event
    "out": RtpSession outbound tap ─────┘

``in`` is what the endpoint sends (DESIGN.md "Terms"), ``out`` every frame we send it (talk,
play, speakings). Stopping detaches the taps first (no more audio reaches STT), then lets each
stream finalize the utterance in progress for at most ``timeout_s``, then aborts it: once
:meth:`TranscribeSession.finish` returns, no task of the session is left running.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

from voipbin.common.clock import new_id
from voipbin.media.session import RtpSession
from voipbin.speech.stt.base import Recognizer, SpeechEvent, TranscriptionStream

log = structlog.get_logger(__name__)

DIRECTIONS_OF = {"in": ("in",), "out": ("out",), "both": ("in", "out")}

OnEvent = Callable[["DirectionStream", SpeechEvent], Awaitable[None]]


class DirectionStream:
    """One direction's STT stream and the task that hands its events to ``on_event`` in order."""

    def __init__(self, direction: str, stream: TranscriptionStream, on_event: OnEvent) -> None:
        self.direction = direction
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
                 on_event: OnEvent) -> None:
        codec = media.codec
        rate = codec.clock_rate if codec is not None else 8000
        self._media = media
        self.streams = {d: DirectionStream(d, recognizer.open_stream(language=language, sample_rate=rate), on_event)
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
