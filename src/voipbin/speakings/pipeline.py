"""The media-pod side of a speaking: queued text -> TTS -> one player per audio sink.

Stages (pipecat style; ``flush`` reaches every one)::

    say(text) -> text queue -> first-clause split -> TTS stage (synthesizer.synthesize, sentence by
              sentence) -> leading-silence trim -> StreamPlayer per sink -> Mixer: RtpSession.outbound ("out": the endpoint hears it)
                                                 RtpSession.inbound_mix ("in": its incoming side)

Sinks by ``direction`` (:func:`sinks_for_direction`, DESIGN.md "Terms", seed 004): ``out`` is heard
by the endpoint; ``in`` is injected on the endpoint's incoming side and heard by whoever it is
bridged to; ``both`` both. Neither ever reaches the ``in`` transcription of any leg (the RTP
session keeps injected audio away from its own-voice consumers).

``flush`` (barge-in): the queue is emptied, the synthesis in progress is cancelled and every
player drops what it holds, including the partial frame, so the next 20 ms media tick sends
silence. The pipeline stays usable. ``close`` flushes and takes the players out of the mixers.

Time to first audio is what a caller hears as latency: a first sentence that opens with a short
clause (``"Hello, how can I help you today?"``) is synthesized as two units so the first is ready
sooner (the one first-clause rule, :func:`voipbin.speech.tts.base.split_first_clause`), and the
silence the voice puts before the first word is cut to ``LEAD_SILENCE_S``.

A flow's ``talk`` and ``POST /calls/{id}/talk`` go through the same stages (:func:`speak_once`).
"""

from __future__ import annotations

import asyncio
import contextlib

import numpy as np

import structlog

from voipbin.media.mixer import Mixer
from voipbin.media.players import StreamPlayer
from voipbin.media.session import RtpSession
from voipbin.speech.tts.base import Synthesizer, split_first_clause

__all__ = ["LEAD_SILENCE_S", "SpeakingPipeline", "sinks_for_direction", "speak_once", "trim_leading_silence"]

log = structlog.get_logger(__name__)

#: sound kept before the first word of a /say, at most (the voice's own lead-in is longer)
LEAD_SILENCE_S = 0.02
#: a 20 ms window quieter than this (RMS of PCM16) is silence
SILENCE_RMS = 200.0
#: a sample of the kept lead-in below this magnitude (PCM16, -54 dBFS) is inaudible: the lead-in
#: starts at its first louder sample (piper's is often digital silence up to the word: 20 ms of
#: nothing before every /say's first packet of speech otherwise)
AUDIBLE_PEAK = 64


def sinks_for_direction(media: RtpSession, direction: str) -> list[Mixer]:
    """The mixers a speaking with ``direction`` (``in``, ``out`` or ``both``) plays into.
    Raises KeyError for another value (the service validates it first)."""
    return {"out": [media.outbound], "in": [media.inbound_mix], "both": [media.outbound, media.inbound_mix]}[direction]


def trim_leading_silence(pcm: bytes, sample_rate: int, keep_s: float = LEAD_SILENCE_S) -> bytes:
    """Cut the silence before the first sound (PCM16 mono): the audio from the first 20 ms window
    louder than `SILENCE_RMS`, with up to ``keep_s`` before it (a soft onset: "s", "sh", "p"), from
    its first audible sample (`AUDIBLE_PEAK`) on. Audio with no loud window is returned whole."""
    window = sample_rate // 50
    samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2")
    frames = len(samples) // window
    if frames == 0:
        return pcm
    rms = np.sqrt(np.mean(samples[: frames * window].reshape(frames, window).astype(np.float64) ** 2, axis=1))
    loud = np.flatnonzero(rms > SILENCE_RMS)
    if len(loud) == 0:
        return pcm
    onset = int(loud[0]) * window
    start = max(0, onset - int(keep_s * sample_rate))
    audible = np.flatnonzero(np.abs(samples[start:onset].astype(np.int32)) >= AUDIBLE_PEAK)
    start = start + int(audible[0]) if len(audible) else onset
    return pcm[2 * start :]


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
                await self._speak(text)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("speaking synthesis failed", provider=self._synthesizer.name)

    async def _speak(self, text: str) -> None:
        """The TTS stage for one text: first-clause split, lead-in trimmed, fed to every player.
        Raises what the synthesizer raises (SpeechProviderError, ...)."""
        first = True
        for unit in split_first_clause(text):
            async for chunk in self._synthesizer.synthesize(unit, language=self._language, voice=self._voice):
                if first:
                    chunk, first = trim_leading_silence(chunk, self._synthesizer.sample_rate), False
                for player in self.players:
                    player.feed(chunk)
        for player in self.players:
            player.end_utterance()


async def speak_once(synthesizer: Synthesizer, sinks: list[Mixer], text: str, *, language: str,
                     voice: str | None, wait: bool = True) -> None:
    """A ``talk``: ``text`` through a speaking's stages (first-clause split, lead-in trimmed) into players
    in ``sinks`` that then end, so each mixer drops its player once played out.

    Returns when the text is synthesized, or with ``wait`` when it is played out too. Raises what the
    synthesizer raises; on any error or cancellation the players are silenced and taken out at once.
    """
    pipeline = SpeakingPipeline(synthesizer, sinks, language=language, voice=voice)
    for sink, player in zip(sinks, pipeline.players, strict=True):
        sink.add(player)
    try:
        await pipeline._speak(text)
        for player in pipeline.players:
            player.end()
        if wait:
            await asyncio.gather(*(player.wait() for player in pipeline.players))
    except BaseException:
        for sink, player in zip(sinks, pipeline.players, strict=True):
            player.flush()
            player.end()
            sink.remove(player)
        raise
