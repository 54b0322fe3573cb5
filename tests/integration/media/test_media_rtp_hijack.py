"""RTP hijack (issue 13, finding 4): a second sender on 127.0.0.2 aims packets at a live session.

Its audio must never reach the jitter buffer, the inbound consumers (the ``in`` transcription, a
bridge) or move the stream; the legitimate stream goes on. The rule is :mod:`voipbin.media.latching`.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from test_media_rtp_sessions import RawPeer, dominant_hz, tone, wait_for
from voipbin.media.clock import ManualScheduler, MediaClock
from voipbin.media.codecs import PcmuCodec
from voipbin.media.recorder import FrameCollector
from voipbin.media.rtp import RtpPacket
from voipbin.media.sdp import SessionDescription, create_answer, create_offer
from voipbin.media.session import RtpSession
from voipbin.speech.stt.base import SpeechEvent
from voipbin.transcribes.pipeline import DirectionStream, TranscribeSession

HOST = "127.0.0.1"
ATTACKER_HOST = "127.0.0.2"
CODEC = PcmuCodec()


async def peer_on(host: str) -> RawPeer:
    _, peer = await asyncio.get_running_loop().create_datagram_endpoint(RawPeer, local_addr=(host, 0))
    return peer


def packets(freq_hz: float, count: int, ssrc: int, first_seq: int = 0) -> list[RtpPacket]:
    """``count`` 20 ms PCMU packets of a tone, in sequence."""
    pcm = tone(freq_hz, count * 0.02, 8000)
    return [RtpPacket(0, (first_seq + i) & 0xFFFF, 160 * (first_seq + i), ssrc,
                      CODEC.encode(pcm[160 * i:160 * (i + 1)].tobytes())) for i in range(count)]


def level_at(samples: np.ndarray, freq_hz: float, rate_hz: int = 8000) -> float:
    """Amplitude of one frequency in ``samples`` (single-bin DFT)."""
    t = np.arange(len(samples)) / rate_hz
    return float(2 * abs(np.sum(samples * np.exp(-2j * np.pi * freq_hz * t))) / max(1, len(samples)))


class RecordingRecognizer:
    """An STT engine that keeps every frame it is fed (what the transcription would hear)."""

    name = "recording"

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def check(self, *, language: str) -> str:
        return language

    def open_stream(self, *, language: str, sample_rate: int = 8000) -> RecordingStream:
        return RecordingStream(self.frames)


class RecordingStream:
    def __init__(self, frames: list[bytes]) -> None:
        self.frames = frames
        self._closed = asyncio.Event()

    def feed(self, frame: bytes) -> None:
        self.frames.append(frame)

    def close(self) -> None:
        self._closed.set()

    async def aclose(self) -> None:
        self._closed.set()

    async def events(self):  # type: ignore[no-untyped-def]
        await self._closed.wait()
        return
        yield


async def _ignore(stream: DirectionStream, event: SpeechEvent) -> None:
    pass


async def test_second_sender_is_dropped_and_counted_legit_stream_continues() -> None:
    phone = await peer_on(HOST)  # what the SDP names (loopback: reachable, no latching)
    attacker = await peer_on(ATTACKER_HOST)
    same_host = await peer_on(HOST)  # another port on the phone's host is a stranger too
    session = await RtpSession.open(HOST, codec=PcmuCodec(), remote_address=phone.address)
    heard = FrameCollector()
    bridged = FrameCollector()
    session.add_inbound_consumer(bridged, injected=True)
    stt = RecordingRecognizer()
    transcription = TranscribeSession(session, stt, language="en-US", direction="in", on_event=_ignore)
    transcription.attach()
    session.add_inbound_consumer(heard)

    legit = packets(400, 25, ssrc=0x1111)
    forged = packets(1000, 25, ssrc=0x2222, first_seq=5000)
    for good, bad in zip(legit, forged, strict=True):
        attacker.send(bad, session.local_address)
        same_host.send(bad, session.local_address)
        phone.send(good, session.local_address)
    await wait_for(lambda: session.stats.packets_received + session.stats.packets_foreign_source >= 75)
    await asyncio.sleep(0.1)  # the media clock sends a few packets meanwhile
    await transcription.finish(1.0)
    session.close()

    assert session.stats.packets_foreign_source == 50
    assert session.stats.packets_received == 25 and session.stats.latches == 0
    assert session.jitter_buffer.stats.released == 25 and session.jitter_buffer.stats.resyncs == 0
    assert session.remote_address == phone.address
    assert phone.received and not attacker.received and not same_host.received  # our audio goes to the phone only
    for samples in (heard.samples(), bridged.samples(), np.frombuffer(b"".join(stt.frames), "<i2")):
        assert len(samples) == 25 * 160
        assert dominant_hz(samples) == pytest.approx(400, abs=5)
        assert level_at(samples, 1000) < 50 < level_at(samples, 400)


async def test_nat_latch_happens_once_and_an_attacker_cannot_take_it() -> None:
    session = await RtpSession.open(HOST, codec=PcmuCodec(), remote_address=("10.20.30.40", 40000))
    phone = await peer_on(HOST)  # the phone's public (NAT) address: its SDP named a private one
    attacker = await peer_on(ATTACKER_HOST)
    heard = FrameCollector()
    session.add_inbound_consumer(heard)
    early = packets(1000, 2, ssrc=0x2222, first_seq=7000)
    for packet in early:  # fewer than the confirming packets: never latched
        attacker.send(packet, session.local_address)
    stream = packets(400, 30, ssrc=0x1111)
    for packet in stream[:3]:
        phone.send(packet, session.local_address)
    await wait_for(lambda: session.stats.latches == 1)
    assert session.remote_address == phone.address
    flood = packets(1000, 40, ssrc=0x2222, first_seq=7002)
    for good, bad in zip(stream[3:], flood, strict=False):
        attacker.send(bad, session.local_address)
        phone.send(good, session.local_address)
    for bad in flood[27:]:  # the attacker keeps sending long after: no relatch, ever
        attacker.send(bad, session.local_address)
    await wait_for(lambda: session.stats.packets_received == 28)
    await wait_for(lambda: session.stats.packets_foreign_source == 2 + 2 + 40)  # 2 early, 2 unconfirmed, flood
    await asyncio.sleep(0.06)
    session.close()
    assert session.stats.latches == 1 and session.remote_address == phone.address
    assert not attacker.received and phone.received
    samples = heard.samples()
    assert len(samples) == 28 * 160  # the phone's first two packets confirmed it; all its others arrived
    assert level_at(samples, 1000) < 50 < level_at(samples, 400)


async def test_no_latch_after_the_window() -> None:
    scheduler = ManualScheduler()  # the session's time is its media clock's: moved by the test
    session = await RtpSession.open(HOST, codec=PcmuCodec(), remote_address=("192.168.1.20", 40000),
                                    latch_window_s=0.1, clock=MediaClock(scheduler=scheduler))
    late = await peer_on(ATTACKER_HOST)
    stream = packets(400, 6, ssrc=0x3333)
    late.send(stream[0], session.local_address)  # opens the window
    await wait_for(lambda: session.stats.packets_foreign_source == 1)
    scheduler.advance(0.11)  # the window has closed
    for packet in stream[1:]:
        late.send(packet, session.local_address)
    await wait_for(lambda: session.stats.packets_foreign_source == 6)
    session.close()
    assert session.stats.latches == 0 and session.stats.packets_received == 0
    assert session.remote_address == ("192.168.1.20", 40000)


async def test_old_style_hold_keeps_the_accepted_source() -> None:
    phone = await peer_on(HOST)
    session = await RtpSession.open(HOST)
    offer = create_offer(HOST, phone.address[1])
    _, media = create_answer(SessionDescription.parse(str(offer)), HOST, session.local_port)
    session.apply(media)
    held_offer = create_offer("0.0.0.0", phone.address[1], session_version=2)  # RFC 3264 §8.4 old-style hold
    _, held = create_answer(SessionDescription.parse(str(held_offer)), HOST, session.local_port)
    session.apply(held)
    assert session.remote_address is None and not session.sending
    phone.send(packets(400, 1, ssrc=0x4444)[0], session.local_address)  # still the endpoint's
    await wait_for(lambda: session.stats.packets_received == 1)
    session.apply(media)  # resumed with the same address
    assert session.remote_address == phone.address and session.sending
    assert session.stats.packets_foreign_source == 0
    session.close()
