"""TranscribeSession without models or sockets: taps by direction, event order, bounded finish."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from voipbin.media.session import RtpSession
from voipbin.speech.stt.base import FinalTranscript, SpeechEnded, SpeechEvent, SpeechStarted
from voipbin.transcribes.pipeline import DirectionStream, TranscribeSession


class FakeStream:
    """Emits Started/Ended/Final for the frames fed, once closed (or never, if ``stuck``)."""

    def __init__(self, sample_rate: int, stuck: bool) -> None:
        self.sample_rate = sample_rate
        self.frames: list[bytes] = []
        self._closed = asyncio.Event()
        self._aborted = asyncio.Event()
        self.stuck = stuck

    def feed(self, frame: bytes) -> None:
        if self._closed.is_set():
            raise ValueError("closed")
        self.frames.append(frame)

    def close(self) -> None:
        self._closed.set()

    async def aclose(self) -> None:
        self._aborted.set()

    async def events(self) -> AsyncIterator[SpeechEvent]:
        await self._closed.wait()
        if self.stuck:
            await self._aborted.wait()
            return
        yield SpeechStarted(0.0)
        yield SpeechEnded(0.02 * len(self.frames))
        yield FinalTranscript(f"{len(self.frames)} frames", 0.0, 0.02 * len(self.frames), "en-US")


class FakeRecognizer:
    name = "fake"

    def __init__(self, stuck: bool = False) -> None:
        self.streams: list[FakeStream] = []
        self.stuck = stuck

    def check(self, *, language: str) -> str:
        return language

    def open_stream(self, *, language: str, sample_rate: int = 16000) -> FakeStream:
        stream = FakeStream(sample_rate, self.stuck)
        self.streams.append(stream)
        return stream


async def test_directions_attach_to_inbound_consumers_and_outbound_taps() -> None:
    media = RtpSession()  # not opened: consumers and taps are plain lists
    got: list[tuple[str, str]] = []

    async def on_event(stream: DirectionStream, event: SpeechEvent) -> None:
        got.append((stream.direction, type(event).__name__))

    session = TranscribeSession(media, FakeRecognizer(), language="en-US", direction="both", on_event=on_event)
    session.attach()
    assert session.streams["in"].feed in media.receiver.consumers and session.streams["out"].feed in media.sender.taps
    media.receiver.emit_frame(bytes(320))  # "in": what the endpoint sent
    session.streams["out"].feed(bytes(320))
    await session.finish(1.0)
    assert media.receiver.consumers == [] and media.sender.taps == []
    assert [g for g in got if g[0] == "in"] == [("in", "SpeechStarted"), ("in", "SpeechEnded"),
                                                 ("in", "FinalTranscript")]
    assert not session.running


async def test_out_only_does_not_listen_to_the_endpoint() -> None:
    media = RtpSession()

    async def on_event(stream: DirectionStream, event: SpeechEvent) -> None:
        pass

    recognizer = FakeRecognizer()
    session = TranscribeSession(media, recognizer, language="en-US", direction="out", on_event=on_event)
    session.attach()
    assert list(session.streams) == ["out"] and media.receiver.consumers == []
    assert recognizer.streams[0].sample_rate == 8000
    await session.finish(1.0)


async def test_finish_is_bounded_and_leaves_no_task() -> None:
    media = RtpSession()

    async def on_event(stream: DirectionStream, event: SpeechEvent) -> None:
        pass

    session = TranscribeSession(media, FakeRecognizer(stuck=True), language="en-US", direction="in",
                                on_event=on_event)
    session.attach()
    loop = asyncio.get_running_loop()
    start = loop.time()
    await session.finish(0.1)
    assert loop.time() - start < 1.0
    assert not session.running
    assert not [t for t in asyncio.all_tasks() if "DirectionStream" in repr(t.get_coro())]
