"""The conference mixer: mix-minus, sample-exact, clipped, mixed codecs, mute/hold, leave, announcements.

Real RtpSessions on 127.0.0.1 ticked by one MediaClock on a ManualScheduler: each test hands a
session RTP packets as its peer would (``datagram_received``, synchronous), advances the clock one
20 ms frame, then reads what each participant would hear. Sessions are ``recvonly`` (they send
nothing, so the test reads their outbound mixer itself, one frame a tick) except where the real
send path is the point (codecs: the outbound tap gets what was encoded and sent).
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import AsyncIterator

import numpy as np
import pytest

from voipbin.media.clock import ManualScheduler, MediaClock
from voipbin.media.codecs import Codec, PcmaCodec, PcmuCodec
from voipbin.media.codecs.telephone_event import TelephoneEvent, event_for_digit
from voipbin.media.conference import ConferenceMixer
from voipbin.media.players import BufferPlayer
from voipbin.media.pcm import FRAME_BYTES, SAMPLE_RATE_HZ, SAMPLES_PER_FRAME
from voipbin.media.rtp import pack_header
from voipbin.media.sdp import Direction
from voipbin.media.session import RtpSession

FRAME_S = 0.02
TELEPHONE_EVENT_PT = 101


def constant(value: int) -> bytes:
    return np.full(SAMPLES_PER_FRAME, value, dtype="<i2").tobytes()


def sine(frequency_hz: float, amplitude: int, index: int) -> bytes:
    """Frame ``index`` of a continuous sine."""
    t = (np.arange(SAMPLES_PER_FRAME) + index * SAMPLES_PER_FRAME) / SAMPLE_RATE_HZ
    return (amplitude * np.sin(2 * np.pi * frequency_hz * t)).astype("<i2").tobytes()


def samples(frame: bytes | None) -> np.ndarray:
    assert frame is not None and len(frame) == FRAME_BYTES
    return np.frombuffer(frame, dtype="<i2").astype(np.int32)


def exact_sum(*frames: bytes) -> bytes:
    """The int16-clipped sample sum, computed independently of the mixer."""
    total = [sum(values) for values in zip(*(np.frombuffer(f, dtype="<i2").tolist() for f in frames))]
    return np.array([max(-32768, min(32767, v)) for v in total], dtype="<i2").tobytes()


class Leg:
    """One participant's RTP session and the peer (phone) that talks to it."""

    def __init__(self, session: RtpSession, peer: socket.socket, codec: Codec) -> None:
        self.session, self.peer, self.codec = session, peer, codec
        self.address = peer.getsockname()
        self.seq, self.timestamp, self.ssrc = secrets.randbits(16), secrets.randbits(32), secrets.randbits(32)
        self.sent: list[bytes] = []  # what the session encoded and sent (decoded), via its outbound tap

    def say(self, pcm: bytes) -> bytes:
        """The phone sends ``pcm`` as one RTP packet; returns the frame the room receives (G.711-decoded)."""
        payload = self.codec.encode(pcm)
        self._send(self.codec.payload_type, payload)
        self.timestamp = (self.timestamp + SAMPLES_PER_FRAME) & 0xFFFFFFFF
        return self.codec.decode(payload)

    def press(self, digit: str) -> None:
        """The phone signals ``digit`` as RFC 4733 events (start, then the end packet three times)."""
        event = event_for_digit(digit)
        self._send(TELEPHONE_EVENT_PT, TelephoneEvent(event, duration=160).serialize(), marker=True)
        for _ in range(3):
            self._send(TELEPHONE_EVENT_PT, TelephoneEvent(event, end=True, duration=800).serialize())
        self.timestamp = (self.timestamp + 800) & 0xFFFFFFFF

    def _send(self, payload_type: int, payload: bytes, marker: bool = False) -> None:
        header = pack_header(payload_type, marker, self.seq, self.timestamp, self.ssrc)
        self.session.datagram_received(header + payload, self.address)
        self.seq = (self.seq + 1) & 0xFFFF

    def heard(self) -> bytes | None:
        """What the session would send this tick (a ``recvonly`` session does not read it itself)."""
        return self.session.outbound.read_frame()


class Room:
    def __init__(self) -> None:
        self.scheduler = ManualScheduler()
        self.clock = MediaClock(scheduler=self.scheduler)
        self.mixer = ConferenceMixer(clock=self.clock)
        self.legs: list[Leg] = []
        self.on_dtmf: list[str] = []

    async def leg(self, codec: Codec | None = None, *, sending: bool = False) -> Leg:
        codec = codec or PcmuCodec()
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        peer.bind(("127.0.0.1", 0))
        session = await RtpSession.open(
            "127.0.0.1", clock=self.clock, codec=codec, remote_address=peer.getsockname(),
            direction=Direction.SENDRECV if sending else Direction.RECVONLY,
            telephone_event_payload_type=TELEPHONE_EVENT_PT, on_dtmf=lambda d: self.on_dtmf.append(d.digit))
        leg = Leg(session, peer, codec)
        session.add_outbound_tap(leg.sent.append)
        self.legs.append(leg)
        return leg

    def tick(self) -> None:
        self.scheduler.advance(FRAME_S)

    def close(self) -> None:
        self.mixer.close()
        for leg in self.legs:
            leg.session.close()
            leg.peer.close()


@pytest.fixture
async def room() -> AsyncIterator[Room]:
    room = Room()
    yield room
    room.close()


async def joined(room: Room, count: int, **kwargs: object) -> list[Leg]:
    legs = [await room.leg(**kwargs) for _ in range(count)]  # type: ignore[arg-type]
    for index, leg in enumerate(legs):
        room.mixer.join(f"call-{index}", leg.session)
    return legs


async def test_each_hears_exactly_the_sum_of_the_others_never_itself(room: Room) -> None:
    a, b, c = await joined(room, 3)
    assert room.mixer.participants == ("call-0", "call-1", "call-2") and len(room.mixer) == 3
    for index in range(10):
        fa, fb, fc = a.say(sine(300, 9000, index)), b.say(sine(700, 9000, index)), c.say(constant(-1200))
        room.tick()
        assert a.heard() == exact_sum(fb, fc)
        assert b.heard() == exact_sum(fa, fc)
        assert c.heard() == exact_sum(fa, fb)


async def test_one_speaker_is_heard_untouched_and_hears_silence(room: Room) -> None:
    a, b, c = await joined(room, 3)
    spoken = a.say(sine(440, 12000, 0))
    room.tick()
    assert b.heard() == spoken and c.heard() == spoken
    assert a.heard() is None  # nothing else in the room: silence, so silence suppression can work
    room.tick()
    assert [leg.heard() for leg in (a, b, c)] == [None, None, None]


@pytest.mark.parametrize("third_speaks", [True, False])
@pytest.mark.parametrize("loud", [30000, -30000])
async def test_loud_sums_clip_instead_of_wrapping(room: Room, loud: int, third_speaks: bool) -> None:
    a, b, c = await joined(room, 3)
    fa, fb = a.say(constant(loud)), b.say(constant(loud))
    if third_speaks:
        c.say(constant(0))  # c hears S - own; else c hears S itself
    assert abs(samples(fa)[0] + samples(fb)[0]) > 32768  # the true sum does not fit in int16
    room.tick()
    limit = 32767 if loud > 0 else -32768
    assert set(samples(c.heard())) == {limit}
    assert (a.heard(), b.heard()) == (fb, fa)


async def test_pcmu_and_pcma_participants_hear_each_other(room: Room) -> None:
    legs = [await room.leg(codec, sending=True) for codec in (PcmuCodec(), PcmaCodec(), PcmuCodec())]
    for index, leg in enumerate(legs):
        room.mixer.join(f"call-{index}", leg.session)
    tones = [sine(300, 6000, 0), sine(800, 6000, 0), sine(1400, 6000, 0)]
    received: list[bytes] = []
    for _ in range(6):
        received = [leg.say(tone) for leg, tone in zip(legs, tones)]
        room.tick()
    for index, leg in enumerate(legs):
        others = exact_sum(*(frame for i, frame in enumerate(received) if i != index))
        # what the leg sent, decoded: the others' sum through this leg's own codec
        assert leg.sent[-1] == leg.codec.decode(leg.codec.encode(others)), leg.codec.name
        assert len(leg.sent) == 6  # one packet a tick
    assert legs[1].session.stats.packets_sent == 6


async def test_dtmf_is_signalled_not_mixed(room: Room) -> None:
    a, b, c = await joined(room, 3)
    a.press("5")
    room.tick()
    assert room.on_dtmf == ["5"]
    assert [leg.heard() for leg in (a, b, c)] == [None, None, None]


async def test_muted_participant_is_not_heard_and_a_deaf_one_hears_nothing(room: Room) -> None:
    flags = {"a_sends": True, "a_hears": True}
    a, b, c = [await room.leg() for _ in range(3)]
    room.mixer.join("a", a.session, sends=lambda: flags["a_sends"], hears=lambda: flags["a_hears"])
    room.mixer.join("b", b.session)
    room.mixer.join("c", c.session)

    def round_of_speech() -> tuple[bytes, bytes, bytes]:
        said = a.say(constant(1000)), b.say(constant(2000)), c.say(constant(4000))
        room.tick()
        return said

    flags["a_sends"] = False
    fa, fb, fc = round_of_speech()
    assert (a.heard(), b.heard(), c.heard()) == (exact_sum(fb, fc), fc, fb)
    flags["a_sends"], flags["a_hears"] = True, False
    fa, fb, fc = round_of_speech()
    assert (a.heard(), b.heard(), c.heard()) == (None, exact_sum(fa, fc), exact_sum(fa, fb))
    flags["a_hears"] = True
    fa, fb, fc = round_of_speech()
    assert a.heard() == exact_sum(fb, fc)


async def test_leaving_mid_stream_leaves_the_others_undisturbed(room: Room) -> None:
    a, b, c = [await room.leg(sending=True) for _ in range(3)]
    for key, leg in zip("abc", (a, b, c)):
        room.mixer.join(key, leg.session)
    with pytest.raises(ValueError):
        room.mixer.join("a", a.session)
    def through(pcm: bytes) -> bytes:  # what a PCMU leg's packet decodes to
        return a.codec.decode(a.codec.encode(pcm))

    for index in range(20):
        fa, fb = a.say(constant(1000)), b.say(constant(3000))
        if index < 10:
            fc = c.say(constant(500))
        if index == 10:
            room.mixer.leave("c")
            room.mixer.leave("c")  # idempotent
            assert room.mixer.participants == ("a", "b")
        room.tick()
    for leg, other in ((a, fb), (b, fa)):
        before, after = through(exact_sum(other, fc)), through(other)
        assert len(leg.sent) == 20  # a packet every tick: no gap when c left
        assert set(leg.sent[2:10]) == {before} and set(leg.sent[12:]) == {after}
        assert set(leg.sent[10:12]) <= {before, after}  # the frame in flight, then the new sum
    assert c.session.outbound.sources == () and not c.session.receiver.injected_consumers
    c.say(constant(9000))  # c still talks on its call: the room does not hear it
    a.say(constant(1000))
    room.tick()
    assert b.sent[-1] == through(fa)


async def test_announcements_are_heard_by_all_and_tapped(room: Room) -> None:
    a, b, c = await joined(room, 3)
    tapped: list[bytes] = []
    room.mixer.add_announcement_tap(tapped.append)
    speech = b"".join(sine(500, 8000, i) for i in range(3))
    room.mixer.announcements.add(BufferPlayer(speech))
    fb = b.say(constant(700))
    room.tick()
    first = speech[:FRAME_BYTES]
    assert (a.heard(), b.heard(), c.heard()) == (exact_sum(first, fb), first, exact_sum(first, fb))
    room.tick()
    assert a.heard() == b.heard() == c.heard() == speech[FRAME_BYTES:2 * FRAME_BYTES]
    room.mixer.remove_announcement_tap(tapped.append)
    room.tick()
    assert a.heard() == speech[2 * FRAME_BYTES:]
    assert tapped == [speech[:FRAME_BYTES], speech[FRAME_BYTES:2 * FRAME_BYTES]]  # until it was removed
    room.tick()
    assert len(room.mixer.announcements) == 0 and a.heard() is None  # played out


async def test_a_burst_builds_no_delay_beyond_the_input_cap(room: Room) -> None:
    a, b = await joined(room, 2)
    burst = [a.say(constant(100 + 8 * i)) for i in range(100)]  # 2 s of audio between two ticks
    heard = []
    for _ in range(8):
        room.tick()
        heard.append(b.heard())
    assert heard == [*burst[-5:], None, None, None]  # only the newest 100 ms is kept, then it is over


async def test_close_leaves_everyone_and_the_clock(room: Room) -> None:
    a, b = await joined(room, 2)
    assert len(room.clock) == 3
    room.mixer.close()
    assert len(room.mixer) == 0 and len(room.clock) == 2 and room.mixer.closed
    assert a.session.outbound.sources == () and not b.session.receiver.injected_consumers
    with pytest.raises(RuntimeError):
        room.mixer.join("late", a.session)
