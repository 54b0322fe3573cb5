"""Direction rules on a bridged call (DESIGN.md "Terms"; issue 12), without sockets or a timer.

Two legs A and B are bridged (:class:`voipbin.calls.bridge.Bridge`). Phone A says a 300 Hz tone,
phone B a 500 Hz tone, and a speaking on leg A (a 1100 Hz tone, played into the sinks that
:func:`voipbin.speakings.pipeline.sinks_for_direction` picks) uses ``out``, ``in`` or ``both``.
Each leg runs a ``both`` transcription (:class:`voipbin.transcribes.pipeline.TranscribeSession`).
For every leg the test checks what its phone hears and what its ``in``/``out`` transcription gets:
``in`` is only that endpoint's voice, ``out`` exactly what it heard.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import numpy as np
import pytest

from voipbin.calls.bridge import Bridge
from voipbin.calls.digits import DigitBuffer
from voipbin.media.codecs import PcmuCodec
from voipbin.media.players import BufferPlayer
from voipbin.media.rtp import RtpPacket
from voipbin.media.session import RtpSession
from voipbin.speakings.pipeline import sinks_for_direction
from voipbin.speech.stt.base import SpeechEvent
from voipbin.transcribes.pipeline import DirectionStream, TranscribeSession

RATE_HZ = 8000
FRAME = 160
TICKS = 60
SKIP_FRAMES = 5  # the relay's first frames
VOICE_A_HZ, VOICE_B_HZ, SPEAKING_HZ = 300.0, 500.0, 1100.0
TONES = {"A": VOICE_A_HZ, "B": VOICE_B_HZ, "S": SPEAKING_HZ}
CODEC = PcmuCodec()


def tone(freq_hz: float, frames: int, amplitude: float = 5000) -> np.ndarray:
    t = np.arange(frames * FRAME) / RATE_HZ
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype("<i2")


def heard_tones(pcm: bytes) -> set[str]:
    """Which of the test tones are in ``pcm`` (single-bin DFT amplitude well above the noise)."""
    samples = np.frombuffer(pcm, "<i2")[SKIP_FRAMES * FRAME:].astype(float)
    t = np.arange(len(samples)) / RATE_HZ
    found = set()
    for name, hz in TONES.items():
        level = 2 * abs(np.sum(samples * np.exp(-2j * np.pi * hz * t))) / len(samples)
        assert level < 200 or level > 1000, f"{name}: ambiguous level {level:.0f}"
        if level > 1000:
            found.add(name)
    return found


class ManualClock:
    """Stands in for the media clock: the test calls ``on_clock_tick`` itself."""

    def register(self, listener: object) -> None:
        pass

    def unregister(self, listener: object) -> None:
        pass


class CapturingTransport:
    """Stands in for the UDP socket: keeps every datagram sent (what the phone hears)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sent: list[bytes] = []

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        self.sent.append(data)

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", self.port) if name == "sockname" else default

    def close(self) -> None:
        pass

    def heard(self) -> bytes:
        return b"".join(CODEC.decode(RtpPacket.parse(d).payload) for d in self.sent)


class RecordingRecognizer:
    """An STT engine that keeps, per stream, every frame it is fed."""

    name = "recording"

    def __init__(self) -> None:
        self.streams: list[RecordingStream] = []

    def open_stream(self, *, language: str, sample_rate: int = RATE_HZ) -> RecordingStream:
        stream = RecordingStream()
        self.streams.append(stream)
        return stream


@dataclass
class RecordingStream:
    frames: list[bytes] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    def feed(self, frame: bytes) -> None:
        self.frames.append(frame)

    def close(self) -> None:
        self.closed.set()

    async def aclose(self) -> None:
        self.closed.set()

    async def events(self) -> AsyncIterator[SpeechEvent]:
        await self.closed.wait()
        return
        yield  # pragma: no cover


async def _ignore(stream: DirectionStream, event: SpeechEvent) -> None:
    pass


@dataclass
class BridgedLeg:
    phone: tuple[str, int]
    voice: np.ndarray
    transport: CapturingTransport
    media: RtpSession
    transcription: TranscribeSession
    stt: RecordingRecognizer

    def say(self, tick: int) -> None:
        pcm = self.voice[tick * FRAME:(tick + 1) * FRAME].tobytes()
        packet = RtpPacket(0, tick, tick * FRAME, 0x1000 + self.phone[1], CODEC.encode(pcm))
        self.media.datagram_received(packet.serialize(), self.phone)

    def transcribed(self, direction: str) -> bytes:
        return b"".join(self.transcription.streams[direction]._stream.frames)  # type: ignore[attr-defined]


def _leg(local_port: int, phone_port: int, voice_hz: float, te_pt: int | None = None) -> BridgedLeg:
    phone = ("127.0.0.1", phone_port)
    media = RtpSession(codec=PcmuCodec(), remote_address=phone, clock=ManualClock(),  # type: ignore[arg-type]
                       telephone_event_payload_type=te_pt)
    transport = CapturingTransport(local_port)
    media.connection_made(transport)  # type: ignore[arg-type]
    stt = RecordingRecognizer()
    transcription = TranscribeSession(media, stt, language="en-US", direction="both", on_event=_ignore)  # type: ignore[arg-type]
    transcription.attach()
    return BridgedLeg(phone, tone(voice_hz, TICKS), transport, media, transcription, stt)


# speaking on leg A -> (what each phone hears, what each leg's "out" transcription gets)
EXPECTED = {
    "out": ({"B", "S"}, {"A"}),
    "in": ({"B"}, {"A", "S"}),
    "both": ({"B", "S"}, {"A", "S"}),
}


@pytest.mark.parametrize("direction", ["out", "in", "both"])
async def test_what_each_leg_hears_and_transcribes(direction: str) -> None:
    a = _leg(10000, 20000, VOICE_A_HZ)
    b = _leg(10002, 20002, VOICE_B_HZ)
    bridge = Bridge(a.media, b.media)
    for sink in sinks_for_direction(a.media, direction):  # one player per sink, as the pipeline does
        sink.add(BufferPlayer(tone(SPEAKING_HZ, TICKS), loop=True))
    now = asyncio.get_running_loop().time()
    for tick in range(TICKS):
        a.say(tick)
        b.say(tick)
        a.media.on_clock_tick(1, now + 0.02 * tick)
        b.media.on_clock_tick(1, now + 0.02 * tick)
    bridge.close()
    for leg in (a, b):
        leg.transcription.detach()

    a_hears, b_hears = EXPECTED[direction]
    assert heard_tones(a.transport.heard()) == a_hears
    assert heard_tones(b.transport.heard()) == b_hears
    assert heard_tones(a.transcribed("out")) == a_hears  # "out": what the endpoint heard from us
    assert heard_tones(b.transcribed("out")) == b_hears
    assert heard_tones(a.transcribed("in")) == {"A"}  # "in": only the endpoint's own voice
    assert heard_tones(b.transcribed("in")) == {"B"}
    for leg in (a, b):
        await leg.transcription.finish(0.1)
        leg.media.close()


async def test_an_in_speaking_with_nobody_bridged_reaches_no_transcription() -> None:
    """Seed 002's agent (speaking ``both``, transcribe ``both``) never hears itself as ``in``."""
    a = _leg(10004, 20004, VOICE_A_HZ)
    for sink in sinks_for_direction(a.media, "both"):
        sink.add(BufferPlayer(tone(SPEAKING_HZ, TICKS), loop=True))
    now = asyncio.get_running_loop().time()
    for tick in range(TICKS):
        if tick % 2:  # the phone talks in bursts: ticks with no packet deliver the injected frame alone
            a.say(tick)
        a.media.on_clock_tick(1, now + 0.02 * tick)
    a.transcription.detach()
    assert heard_tones(a.transcribed("in")) == {"A"}
    assert heard_tones(a.transcribed("out")) == {"S"}
    await a.transcription.finish(0.1)
    a.media.close()


def _events_sent(leg: BridgedLeg, pt: int = 101) -> list[tuple[int, bool]]:
    """(event code, end bit) of every RFC 4733 packet the leg sent its phone."""
    packets = [RtpPacket.parse(d) for d in leg.transport.sent]
    return [(p.payload[0], bool(p.payload[1] & 0x80)) for p in packets if p.payload_type == pt]


async def test_digits_cross_as_rfc4733_unless_muted_or_held() -> None:
    a = _leg(10006, 20006, VOICE_A_HZ, te_pt=101)
    b = _leg(10008, 20008, VOICE_B_HZ, te_pt=101)
    a_digits, b_digits = DigitBuffer(), DigitBuffer()
    muted = False
    bridge = Bridge(a.media, b.media, a_sends=lambda: not muted, a_digits=a_digits, b_digits=b_digits)
    now = asyncio.get_running_loop().time()

    def run(ticks: int) -> None:
        for tick in range(ticks):
            a.media.on_clock_tick(1, now + 0.02 * tick)
            b.media.on_clock_tick(1, now + 0.02 * tick)

    a_digits.push("7", 60)  # from alice (RFC 4733 or INFO: both end up here)
    b_digits.push("#", 100)
    run(20)
    assert {code for code, _ in _events_sent(b)} == {7} and (7, True) in _events_sent(b)
    assert {code for code, _ in _events_sent(a)} == {11} and (11, True) in _events_sent(a)  # "#" is event 11
    muted = True  # mute in / hold: nothing crosses
    b.transport.sent.clear()
    a_digits.push("1")
    run(20)
    assert _events_sent(b) == [] and bridge.digits_relayed == 2
    bridge.close()
    a_digits.push("2")  # after the bridge: buffered for digits_receive, not relayed
    assert a_digits.pending == "712"
    for leg in (a, b):
        await leg.transcription.finish(0.1)
        leg.media.close()


async def test_a_leg_without_telephone_event_drops_relayed_digits() -> None:
    a = _leg(10010, 20010, VOICE_A_HZ, te_pt=101)
    b = _leg(10012, 20012, VOICE_B_HZ)  # negotiated no telephone-event
    a_digits = DigitBuffer()
    bridge = Bridge(a.media, b.media, a_digits=a_digits)
    a_digits.push("5")  # logged, not raised
    assert bridge.digits_relayed == 0 and a_digits.pending == "5"
    bridge.close()
    for leg in (a, b):
        await leg.transcription.finish(0.1)
        leg.media.close()
