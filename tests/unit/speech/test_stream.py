"""SegmentedTranscriptionStream with a scripted VAD and a fake transcriber."""

import asyncio

import numpy as np

from voipbin.media.pcm import split_frames
from voipbin.speech.stt.base import (
    FinalTranscript,
    SpeechEnded,
    SpeechInterim,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
)
from voipbin.speech.stt.stream import SegmentedTranscriptionStream
from voipbin.speech.stt.vad import WINDOW_BYTES, VadSegmenter, VadState

RATE = 16000


def loud_detector(window: np.ndarray) -> float:
    return 1.0 if np.abs(window).max() > 0.1 else 0.0


def audio(pattern: str, rate: int = RATE) -> bytes:
    """One character per 100 ms: '#' loud tone, '.' silence."""
    n = rate // 10
    loud = (np.sin(np.arange(n) / 3) * 12000).astype("<i2").tobytes()
    return b"".join(loud if c == "#" else bytes(2 * n) for c in pattern)


class FakeTranscriber:
    def __init__(self) -> None:
        self.calls: list[int] = []

    async def __call__(self, pcm: bytes) -> str:
        self.calls.append(len(pcm))
        await asyncio.sleep(0)
        return f"{len(pcm) // 3200} tenths"


def stream(transcriber: FakeTranscriber, *, rate: int = RATE, interim: float | None = 0.5) -> SegmentedTranscriptionStream:
    return SegmentedTranscriptionStream(
        segmenter=VadSegmenter(loud_detector, min_silence_ms=320, speech_pad_ms=0, tail_pad_ms=64),
        transcribe=transcriber, language="en-US", sample_rate=rate, interim_interval_s=interim,
    )  # fmt: skip


async def collect(s: SegmentedTranscriptionStream, pcm: bytes, rate: int = RATE) -> list:
    for frame in split_frames(pcm, rate):
        s.feed(frame)
    s.close()
    return [e async for e in s.events()]


async def test_events_in_order_for_each_utterance() -> None:
    events = await collect(stream(FakeTranscriber()), audio("..####......###......"))
    kinds = [type(e) for e in events]
    finals = [e for e in events if isinstance(e, FinalTranscript)]
    assert len(finals) == 2 and finals[0].language == "en-US"
    assert abs(finals[0].start_s - 0.2) < 0.04 and abs(finals[0].end_s - 0.6) < 0.04
    order = [k for k in kinds if k not in (SpeechInterim, SpeechPaused)]
    assert order == [SpeechStarted, SpeechEnded, FinalTranscript] * 2


async def test_interim_text_while_speaking() -> None:
    events = await collect(stream(FakeTranscriber(), interim=0.3), audio("." + "#" * 15 + "." * 6))
    kinds = [type(e) for e in events]
    assert kinds[0] is SpeechStarted and kinds[-2:] == [SpeechEnded, FinalTranscript]
    assert SpeechInterim in kinds[1:-2]


async def test_speculative_transcription_becomes_the_final() -> None:
    transcriber = FakeTranscriber()
    events = await collect(stream(transcriber, interim=None), audio("..#####......"))
    assert [type(e) for e in events if not isinstance(e, SpeechPaused)] == [SpeechStarted, SpeechEnded, FinalTranscript]
    assert len(transcriber.calls) == 1  # the pause's job was reused, not redone


async def test_a_pause_hands_over_its_text_and_a_resumption_voids_it() -> None:
    """Fed in step with its events (as a live call is): the pause's text comes before the end is
    confirmed, speech coming back voids it, and the final is the whole utterance's."""
    transcriber = FakeTranscriber()
    s = stream(transcriber, interim=None)
    stream_events = s.events()

    async def next_event() -> object:
        return await asyncio.wait_for(anext(stream_events), 5)

    def feed(pattern: str) -> None:
        for frame in split_frames(audio(pattern), RATE):
            s.feed(frame)

    feed("..###.")  # 100 ms of silence: past the 64 ms tail pad, short of the 320 ms hangover
    assert type(await next_event()) is SpeechStarted
    paused = await next_event()
    assert paused == SpeechPaused("3 tenths", paused.offset_s) and abs(paused.offset_s - 0.5) < 0.04
    feed("##")
    assert type(await next_event()) is SpeechResumed
    feed(".")
    again = await next_event()
    assert type(again) is SpeechPaused and again.text != paused.text
    feed("...")
    s.close()
    rest = [e async for e in stream_events]
    assert [type(e) for e in rest] == [SpeechEnded, FinalTranscript]
    assert rest[-1].text == again.text
    assert len(transcriber.calls) == 2  # the final is the second pause's text, not transcribed again


async def test_8khz_input_is_resampled() -> None:
    transcriber = FakeTranscriber()
    events = await collect(stream(transcriber, rate=8000, interim=None), audio("..#####......", 8000), 8000)
    assert [type(e) for e in events if not isinstance(e, SpeechPaused)] == [SpeechStarted, SpeechEnded, FinalTranscript]
    assert abs(events[-1].end_s - 0.7) < 0.04


async def test_close_finalizes_speech_in_progress() -> None:
    events = await collect(stream(FakeTranscriber(), interim=None), audio("..#####"))
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded, FinalTranscript]


async def test_aclose_ends_events_and_rejects_frames() -> None:
    s = stream(FakeTranscriber())
    s.feed(audio("##")[:640])
    await s.aclose()
    assert [e async for e in s.events()] == []
    try:
        s.feed(b"\x00\x00")
    except ValueError:
        pass
    else:
        raise AssertionError("feed after aclose must fail")


async def test_feed_never_blocks_and_drops_the_oldest_frames_when_behind() -> None:
    s = SegmentedTranscriptionStream(
        segmenter=VadSegmenter(loud_detector, min_silence_ms=320, speech_pad_ms=0, tail_pad_ms=64),
        transcribe=FakeTranscriber(), language="en-US", sample_rate=RATE, interim_interval_s=None,
        max_queued_frames=10,
    )  # fmt: skip
    frames = split_frames(audio("." * 5), RATE)  # 25 frames fed before the pipeline runs once
    for frame in frames:
        s.feed(frame)
    assert s.frames_dropped == len(frames) - 10
    s.close()
    assert [e async for e in s.events()] == []


class RecordingVad:
    """A `StreamVad` that records what it is given (no events)."""

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.stepped = asyncio.Event()

    async def step(self, pcm: bytes, end_of_stream: bool, interim_after_s: float | None) -> tuple[list, VadState]:
        self.steps.append(len(pcm))
        self.stepped.set()
        return [], VadState(False, 0.0, 0.0, 0.0)

    def close(self) -> None:
        pass


async def test_each_window_goes_to_the_vad_as_soon_as_its_last_frame_is_fed() -> None:
    vad = RecordingVad()
    s = SegmentedTranscriptionStream(vad=vad, transcribe=FakeTranscriber(), language="en-US", interim_interval_s=None)
    fed = 0
    for frame in split_frames(audio("." * 4), RATE):  # 20 frames of 640 bytes: 12.5 windows of 1024
        s.feed(frame)
        fed += len(frame)
        if fed // WINDOW_BYTES > sum(vad.steps) // WINDOW_BYTES:  # this frame completes a window
            await asyncio.wait_for(vad.stepped.wait(), 5)
            vad.stepped.clear()
            assert sum(vad.steps) == fed - fed % WINDOW_BYTES  # whole windows, none held back
    assert all(n % WINDOW_BYTES == 0 for n in vad.steps)
    await s.aclose()
