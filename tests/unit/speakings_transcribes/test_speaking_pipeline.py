"""SpeakingPipeline stages without models or sockets: ordering, flush reaching every stage, close."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np

from voipbin.media.mixer import Mixer
from voipbin.speakings.pipeline import SpeakingPipeline, trim_leading_silence
from voipbin.speech.tts.base import split_first_clause

FRAME = 320  # bytes of one 20 ms frame at 8 kHz


class FakeSynthesizer:
    """8 kHz 'speech': each unit is N frames of a constant sample value taken from the text."""

    name = "fake"
    sample_rate = 8000

    def __init__(self, frames_per_unit: int = 5) -> None:
        self.frames_per_unit = frames_per_unit
        self.units: list[str] = []
        self.closed = 0
        self.gate: asyncio.Event | None = None  # when set, each chunk waits for it

    def check(self, *, language: str, voice: str | None = None) -> str:
        return language

    async def synthesize(self, text: str, *, language: str, voice: str | None = None) -> AsyncIterator[bytes]:
        self.units.append(text)
        value = 1000 + len(self.units)
        try:
            for _ in range(self.frames_per_unit):
                if self.gate is not None:
                    await self.gate.wait()
                await asyncio.sleep(0)
                yield np.full(FRAME // 2, value, dtype="<i2").tobytes()
        finally:
            self.closed += 1


def _values(mixer: Mixer, frames: int) -> list[int | None]:
    out: list[int | None] = []
    for _ in range(frames):
        frame = mixer.read_frame()
        out.append(None if frame is None else int(np.frombuffer(frame, dtype="<i2")[80]))
    return out


async def _settle() -> None:
    for _ in range(50):
        await asyncio.sleep(0)


async def test_texts_play_in_order_into_every_sink() -> None:
    synth, out, inbound = FakeSynthesizer(), Mixer(), Mixer()
    pipeline = SpeakingPipeline(synth, [out, inbound], language="en-US", voice=None)
    pipeline.start()
    pipeline.say("first")
    pipeline.say("second")
    await _settle()
    assert synth.units == ["first", "second"]
    for mixer in (out, inbound):  # "both": each sink has its own copy of the same audio
        values = [v for v in _values(mixer, 12) if v is not None]
        assert values[:5] == [1001] * 5 and values[5:10] == [1002] * 5, values
    await pipeline.close()


async def test_flush_reaches_every_stage_and_the_pipeline_stays_usable() -> None:
    synth, out, inbound = FakeSynthesizer(frames_per_unit=50), Mixer(), Mixer()
    pipeline = SpeakingPipeline(synth, [out, inbound], language="en-US", voice=None)
    pipeline.start()
    synth.gate = asyncio.Event()
    synth.gate.set()
    pipeline.say("long")
    pipeline.say("queued")
    for _ in range(10):
        await asyncio.sleep(0)
    synth.gate.clear()  # the synthesis is in progress, half fed
    await _settle()
    assert out.read_frame() is not None and synth.units == ["long"]

    pipeline.flush()
    assert out.read_frame() is None and inbound.read_frame() is None  # silence on the very next tick
    synth.gate.set()
    await _settle()
    assert synth.closed == 1 and synth.units == ["long"]  # synthesis cancelled, queued text dropped
    assert _values(out, 5) == [None] * 5

    pipeline.say("after")
    await _settle()
    assert synth.units == ["long", "after"] and _values(out, 1) == [1002]
    await pipeline.close()
    assert out.sources == () and inbound.sources == ()
    assert synth.closed == 2


async def test_close_is_idempotent_and_say_after_close_fails() -> None:
    synth, out = FakeSynthesizer(), Mixer()
    pipeline = SpeakingPipeline(synth, [out], language="en-US", voice=None)
    pipeline.start()
    await pipeline.close()
    await pipeline.close()
    try:
        pipeline.say("x")
    except RuntimeError:
        pass
    else:
        raise AssertionError("say after close must fail")


def test_split_first_clause() -> None:
    assert split_first_clause("Hello, how can I help you today?") == ["Hello,", "how can I help you today?"]
    assert split_first_clause("Thank you for calling.") == ["Thank you for calling."]
    assert split_first_clause("Hi. Bye, now.") == ["Hi. Bye, now."]  # the clause must open the first sentence
    long_clause = "a" * 60 + ", then more"
    assert split_first_clause(long_clause) == [long_clause]


def test_trim_leading_silence_keeps_20_ms_of_a_soft_onset() -> None:
    soft = (np.sin(np.arange(800) / 2) * 150).astype("<i2")  # 100 ms, RMS ~106: audible, not loud
    tone = np.full(800, 5000, dtype="<i2")
    trimmed = trim_leading_silence(np.concatenate([soft, tone]).tobytes(), 8000)
    assert trimmed == np.concatenate([soft[-160:], tone]).tobytes()


def test_trim_leading_silence_keeps_no_inaudible_lead() -> None:
    silence = np.zeros(8000 // 10, dtype="<i2")  # 100 ms of digital silence, then the voice's first sample
    tone = np.full(800, 5000, dtype="<i2")
    assert trim_leading_silence(np.concatenate([silence, tone]).tobytes(), 8000) == tone.tobytes()
    hiss = np.full(800, 20, dtype="<i2")  # -64 dBFS: inaudible over a phone line
    onset = np.concatenate([np.full(150, 20), np.full(10, 300)]).astype("<i2")  # a word 1.25 ms before the window
    trimmed = trim_leading_silence(np.concatenate([hiss, onset, tone]).tobytes(), 8000)
    assert trimmed == np.concatenate([onset[150:], tone]).tobytes()
    assert trim_leading_silence(silence.tobytes(), 8000) == silence.tobytes()  # all silence: untouched
