"""No silent loss under overload: at twice the capacity target (32 streams, where 16 calls are the
target on 2 cores), every utterance the VAD ends gets its `FinalTranscript` or a `TranscriptDropped`
saying why, work queues stay bounded (``stt_final_max_wait_ms``), and the streams go on.

Real engines: whisper (tiny.en) and Silero VAD in their worker processes; real speech (LibriVox,
Debian pocketsphinx-testdata). The streams are fed all their audio at once, faster than real time:
the harshest overload, every final asked for within a second or two."""

import asyncio
import time

import pytest

from speech_samples import librivox_utterances
from voipbin.media.pcm import split_frames
from voipbin.speech import SpeechSettings
from voipbin.speech.stt.base import DROP_OVERLOADED, FinalTranscript, SpeechEnded, TranscriptDropped
from voipbin.speech.stt.whisper import WhisperRecognizer

pytestmark = pytest.mark.slow

STREAMS = 32
FINAL_MAX_WAIT_S = 1.5


async def test_at_twice_capacity_every_utterance_gets_its_transcript_or_a_drop_event() -> None:
    whisper = WhisperRecognizer(SpeechSettings(stt_final_max_wait_ms=int(FINAL_MAX_WAIT_S * 1000),
                                               stt_interim_interval_ms=500))
    await whisper.warm_up()
    utterances = [pcm for _, pcm in librivox_utterances()]
    gap = bytes(32000)  # 1 s of silence between two utterances
    try:
        streams = [whisper.open_stream(language="en-US") for _ in range(STREAMS)]
        for i, stream in enumerate(streams):
            for frame in split_frames(gap + utterances[i % 5] + gap + utterances[(i + 1) % 5] + gap, 16000):
                stream.feed(frame)
            stream.close()
        started = time.monotonic()
        outcomes = await asyncio.wait_for(asyncio.gather(*(_outcomes(s) for s in streams)), 240)
        elapsed = time.monotonic() - started
    finally:
        await whisper.aclose()
    flat = [o for per_stream in outcomes for o in per_stream]
    assert all(len(per_stream) == 2 for per_stream in outcomes), outcomes  # both utterances of every stream
    dropped = [o for o in flat if isinstance(o, TranscriptDropped)]
    finals = [o for o in flat if isinstance(o, FinalTranscript)]
    assert dropped and all(d.reason == DROP_OVERLOADED for d in dropped)  # it was overloaded, and said so
    assert finals and all(f.text for f in finals)  # ... and still transcribed what it could start in time
    # bounded queues: a final is started within FINAL_MAX_WAIT_S of being asked for, or shed then
    assert elapsed < 30 + 2 * FINAL_MAX_WAIT_S * STREAMS / 8, elapsed


async def _outcomes(stream) -> list[FinalTranscript | TranscriptDropped]:  # type: ignore[no-untyped-def]
    """What each utterance the VAD ended came to, in order; an utterance ended without one fails."""
    out: list[FinalTranscript | TranscriptDropped] = []
    pending = 0
    async for event in stream.events():
        if isinstance(event, SpeechEnded):
            assert pending == 0, "an utterance ended before the previous one got its outcome"
            pending = 1
        elif isinstance(event, FinalTranscript | TranscriptDropped):
            assert pending == 1, f"{event} without an utterance"
            pending = 0
            out.append(event)
    assert pending == 0, "the stream ended with an utterance that got neither a transcript nor a drop"
    return out
