"""The media-pod side of a speaking: queued text -> TTS -> one player per audio sink.

Stages (pipecat style; ``flush`` reaches every one)::

    say(text) -> text queue -> TTS stage (synthesizer.synthesize, sentence by sentence)
              -> StreamPlayer per sink -> Mixer: RtpSession.outbound ("out": the endpoint hears it)
                                                 RtpSession.inbound_mix ("in": mixed into what it says)

``flush`` (barge-in): the queue is emptied, the synthesis in progress is cancelled and every
player drops what it holds, including the partial frame, so the next 20 ms media tick sends
silence. The pipeline stays usable. ``close`` flushes and takes the players out of the mixers.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from voipbin.media.mixer import Mixer
from voipbin.media.players import StreamPlayer
from voipbin.speech.tts.base import Synthesizer

log = structlog.get_logger(__name__)


class SpeakingPipeline:
    """Plays queued texts, in order, into ``sinks`` (each gets its own player of the same audio)."""

    def __init__(self, synthesizer: Synthesizer, sinks: list[Mixer], *, language: str, voice: str | None) -> None:
        self._synthesizer = synthesizer
        self._language = language
        self._voice = voice or None
        self._sinks = sinks
        self.players = [StreamPlayer(input_rate_hz=synthesizer.sample_rate) for _ in sinks]
        self._texts: asyncio.Queue[str] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._closed = False

    def start(self) -> None:
        """Put the players into the mixers and start the TTS stage."""
        for sink, player in zip(self._sinks, self.players, strict=True):
            sink.add(player)
        self._worker = asyncio.get_running_loop().create_task(self._run())

    def say(self, text: str) -> None:
        """Queue ``text``; it plays after everything queued before it."""
        if self._closed:
            raise RuntimeError("speaking pipeline is closed")
        self._texts.put_nowait(text)

    def flush(self) -> None:
        """Barge-in: drop queued text, cancel the synthesis, silence every player now."""
        while not self._texts.empty():
            self._texts.get_nowait()
        if self._worker is not None:
            self._worker.cancel()
        for player in self.players:
            player.flush()
        if not self._closed:
            self._worker = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        """Flush, stop the TTS stage and remove the players from the mixers. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.flush()
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(worker, return_exceptions=True)
        for sink, player in zip(self._sinks, self.players, strict=True):
            sink.remove(player)

    async def _run(self) -> None:
        while True:
            text = await self._texts.get()
            try:
                async for chunk in self._synthesizer.synthesize(text, language=self._language, voice=self._voice):
                    for player in self.players:
                        player.feed(chunk)
                for player in self.players:
                    player.end_utterance()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("speaking synthesis failed", provider=self._synthesizer.name)
