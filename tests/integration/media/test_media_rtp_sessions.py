"""Two RTP sessions (and raw UDP peers) on 127.0.0.1 exchanging audio through the media clock."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import numpy as np
import pytest

from voipbin.media.clock import ManualScheduler, MediaClock
from voipbin.media.codecs import PcmuCodec
from voipbin.media.players import BufferPlayer, StreamPlayer
from voipbin.media.ports import PortAllocator, PortsExhaustedError
from voipbin.media.recorder import FrameCollector, WavRecorder
from voipbin.media.rtp import RtpPacket
from voipbin.media.sdp import Direction, SessionDescription, create_answer, create_offer, process_answer
from voipbin.media.session import RtpSession

HOST = "127.0.0.1"
PCMU_SILENCE = b"\xff" * 160


def tone(freq_hz: float = 1000, seconds: float = 1.0, amplitude: float = 10000, rate_hz: int = 8000) -> np.ndarray:
    t = np.arange(int(seconds * rate_hz)) / rate_hz
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.int16)


def dominant_hz(samples: np.ndarray, rate_hz: int = 8000) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate_hz / len(samples))


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(float) ** 2)))


class RawPeer(asyncio.DatagramProtocol):
    """A bare UDP socket that records every datagram (time, packet, source)."""

    def __init__(self) -> None:
        self.received: list[tuple[float, RtpPacket, tuple[str, int]]] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        self.received.append((asyncio.get_running_loop().time(), RtpPacket.parse(data), addr))

    @property
    def address(self) -> tuple[str, int]:
        return self.transport.get_extra_info("sockname")[:2]

    @property
    def packets(self) -> list[RtpPacket]:
        return [p for _, p, _ in self.received]

    def send(self, packet: RtpPacket, to: tuple[str, int]) -> None:
        self.transport.sendto(packet.serialize(), to)


async def raw_peer() -> RawPeer:
    _, peer = await asyncio.get_running_loop().create_datagram_endpoint(RawPeer, local_addr=(HOST, 0))
    return peer


async def wait_for(predicate, timeout_s: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


@pytest.fixture
async def pair():
    """Session a (offerer) and b (answerer) negotiated through real SDP text."""
    a = await RtpSession.open(HOST)
    b = await RtpSession.open(HOST)
    offer = create_offer(HOST, a.local_port)
    answer, b_media = create_answer(SessionDescription.parse(str(offer)), HOST, b.local_port)
    b.apply(b_media)
    a.apply(process_answer(offer, SessionDescription.parse(str(answer))))
    yield a, b
    a.close()
    b.close()


async def test_tone_arrives_with_frequency_and_level(pair) -> None:
    a, b = pair
    sent = tone(1000, 1.0, 10000)
    collector = FrameCollector()
    b.add_inbound_consumer(collector)
    player = a.outbound.add(BufferPlayer(sent))
    await asyncio.wait_for(player.wait(), 3)
    await asyncio.sleep(0.1)
    received = collector.samples()
    start = int(np.argmax(np.abs(received) > 1000))  # silence packets came before the tone
    heard = received[start : start + 8000]
    assert len(heard) == 8000
    assert dominant_hz(heard) == pytest.approx(1000, abs=2)
    assert 20 * np.log10(rms(heard) / rms(sent)) == pytest.approx(0, abs=0.3)
    assert all(len(f) == 320 for f in collector.frames)
    assert b.stats.packets_received >= 50 and b.stats.packets_invalid == 0


async def test_sequence_timestamp_and_marker() -> None:
    peer = await raw_peer()
    scheduler = ManualScheduler()  # exact ticks: one packet per 20 ms of media-clock time
    session = await RtpSession.open(HOST, codec=PcmuCodec(), remote_address=peer.address,
                                    clock=MediaClock(scheduler=scheduler))  # fmt: skip
    session.outbound.add(BufferPlayer(tone(), loop=True))
    scheduler.advance(0.6)
    await wait_for(lambda: len(peer.received) >= 30)
    session.close()
    packets = sorted(peer.packets, key=lambda p: (p.sequence_number - peer.packets[0].sequence_number) & 0xFFFF)
    assert len(packets) == 30
    for previous, packet in zip(packets, packets[1:]):
        assert packet.sequence_number == (previous.sequence_number + 1) & 0xFFFF
        assert packet.timestamp == (previous.timestamp + 160) & 0xFFFFFFFF
        assert packet.ssrc == packets[0].ssrc == session.ssrc
        assert not packet.marker
    assert packets[0].marker  # first packet of the stream
    assert {p.payload_type for p in packets} == {0} and {len(p.payload) for p in packets} == {160}


async def test_pacing_on_the_real_clock() -> None:
    peer = await raw_peer()
    session = await RtpSession.open(HOST, codec=PcmuCodec(), remote_address=peer.address)
    session.outbound.add(BufferPlayer(tone(), loop=True))
    await wait_for(lambda: len(peer.received) >= 30)
    session.close()
    packets = peer.packets[:30]
    # a late wake-up sends no burst: the timestamp steps over the frames it skipped
    assert all((b.timestamp - a.timestamp) & 0xFFFFFFFF in range(160, 160 * 6, 160) for a, b in zip(packets, packets[1:]))
    times = np.array([t for t, _, _ in peer.received[:30]])
    slope = np.polyfit(np.arange(30), times, 1)[0]
    assert slope == pytest.approx(0.020, abs=0.0005)  # no drift (robust to one late wake-up on a busy box)
    assert np.median(np.diff(times)) == pytest.approx(0.020, abs=0.0015)
    assert session.stats.packets_sent >= 30 and session.stats.bytes_sent == 160 * session.stats.packets_sent


async def test_flush_silences_the_very_next_packet() -> None:
    peer = await raw_peer()
    session = await RtpSession.open(HOST, codec=PcmuCodec(), remote_address=peer.address)
    player = StreamPlayer(16000)
    session.outbound.add(player)
    player.feed(tone(1000, 5.0, 10000, rate_hz=16000).tobytes())
    await wait_for(lambda: sum(p.payload != PCMU_SILENCE for p in peer.packets) >= 10)
    session.flush()
    sent_before_flush = session.stats.packets_sent
    await wait_for(lambda: len(peer.received) >= sent_before_flush + 10)
    session.close()
    by_order = sorted(peer.packets, key=lambda p: p.sequence_number - peer.packets[0].sequence_number & 0xFFFF)
    assert by_order[sent_before_flush - 1].payload != PCMU_SILENCE  # audio right up to the flush
    assert all(p.payload == PCMU_SILENCE for p in by_order[sent_before_flush:])  # silence from the next tick
    assert player.buffered_s == 0


async def test_silence_suppression_marks_talkspurts() -> None:
    peer = await raw_peer()
    scheduler = ManualScheduler()  # ticks happen when the test advances the media clock
    session = await RtpSession.open(HOST, codec=PcmuCodec(), remote_address=peer.address, silence_suppression=True,
                                    clock=MediaClock(scheduler=scheduler))  # fmt: skip
    session.outbound.add(BufferPlayer(tone(seconds=0.06)))
    scheduler.advance(0.06)  # three ticks of tone
    await wait_for(lambda: len(peer.received) >= 3)
    scheduler.advance(0.1)  # five ticks of silence: nothing sent
    session.outbound.add(BufferPlayer(tone(seconds=0.06)))
    scheduler.advance(0.06)
    await wait_for(lambda: len(peer.received) >= 6)
    session.close()
    await asyncio.sleep(0.01)
    p = peer.packets
    assert [x.marker for x in p] == [True, False, False, True, False, False]
    assert p[3].sequence_number == (p[2].sequence_number + 1) & 0xFFFF  # seq continues
    gap = (p[3].timestamp - p[2].timestamp) & 0xFFFFFFFF
    assert gap == 6 * 160  # timestamp kept running through the five silent ticks


async def test_inactivity_timeout_fires_and_rearms() -> None:
    fired: list[float] = []
    scheduler = ManualScheduler()  # the media clock's time moves only when the test says
    peer = await raw_peer()
    session = await RtpSession.open(
        HOST, codec=PcmuCodec(), remote_address=peer.address, rtp_timeout_s=0.2,
        on_timeout=lambda s: fired.append(scheduler.time()), clock=MediaClock(scheduler=scheduler),
    )  # fmt: skip
    opened = scheduler.time()
    scheduler.advance(0.19)
    assert fired == []
    scheduler.advance(0.03)
    assert len(fired) == 1 and 0.2 <= fired[0] - opened < 0.22  # on the first tick 200 ms after
    scheduler.advance(0.5)
    assert len(fired) == 1  # once, not every tick
    peer.send(RtpPacket(0, 1, 160, 7, PCMU_SILENCE), session.local_address)
    await wait_for(lambda: session.stats.packets_received == 1)
    received = scheduler.time()
    scheduler.advance(0.19)
    assert len(fired) == 1
    scheduler.advance(0.03)
    assert len(fired) == 2 and 0.2 <= fired[1] - received < 0.22  # re-armed by the packet
    session.close()


async def test_no_timeout_when_we_do_not_expect_media() -> None:
    fired = []
    scheduler = ManualScheduler()
    session = await RtpSession.open(
        HOST, codec=PcmuCodec(), direction=Direction.SENDONLY, rtp_timeout_s=0.05, on_timeout=fired.append,
        clock=MediaClock(scheduler=scheduler),
    )  # fmt: skip
    scheduler.advance(0.2)
    session.close()
    assert fired == []


async def test_malformed_packets_never_escape(caplog) -> None:
    peer = await raw_peer()
    collector = FrameCollector()
    session = await RtpSession.open(HOST, codec=PcmuCodec(), remote_address=peer.address)
    session.add_inbound_consumer(collector)
    junks = (b"\x00", b"hello world!!", b"\x80" * 11, b"\xa0" + bytes(11) + b"\x00\x09", b"\x90" + bytes(11) + b"\0\0\0\5")
    for junk in junks:
        peer.transport.sendto(junk, session.local_address)
    peer.send(RtpPacket(0, 1, 0, 9, PCMU_SILENCE), session.local_address)
    await wait_for(lambda: collector.frames)
    session.close()
    assert session.stats.packets_invalid == len(junks)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_reordered_packets_are_delivered_in_order() -> None:
    peer = await raw_peer()
    collector = FrameCollector()
    session = await RtpSession.open(HOST, codec=PcmuCodec(), remote_address=peer.address)
    session.add_inbound_consumer(collector)
    codec = PcmuCodec()
    levels = [0, 1000, 2000, 3000, 4000, 5000]
    order = [0, 2, 1, 3, 5, 4]
    for index in order:
        pcm = np.full(160, levels[index], dtype="<i2").tobytes()
        peer.send(RtpPacket(0, (65533 + index) & 0xFFFF, 160 * index, 5, codec.encode(pcm)), session.local_address)
    await wait_for(lambda: len(collector.frames) >= 6)
    session.close()
    got = [int(np.frombuffer(f, "<i2")[0]) for f in collector.frames]
    assert got == sorted(got) and len(got) == 6


async def test_dtmf_both_ways(pair) -> None:
    a, b = pair
    digits = []
    b.on_dtmf = digits.append
    tap = await raw_peer()
    await asyncio.wait_for(a.send_dtmf("1#", duration_ms=100), 3)
    await wait_for(lambda: len(digits) == 2)
    assert [d.digit for d in digits] == ["1", "#"]
    assert all(d.duration_ms == 100 for d in digits)
    assert a.stats.dtmf_sent == 2 and b.stats.dtmf_received == 2
    # wire format of one event (RFC 4733 §2.5): same timestamp, marker first, end bit three times
    b.direction = Direction.INACTIVE  # b stops sending, so a does not latch back onto it
    await asyncio.sleep(0.05)
    a.set_remote_address(tap.address)
    await asyncio.wait_for(a.send_dtmf("5", duration_ms=60), 3)
    events = [p for p in tap.packets if p.payload_type == 101]
    assert len({p.timestamp for p in events}) == 1
    assert [p.marker for p in events] == [True] + [False] * (len(events) - 1)
    assert [bool(p.payload[1] & 0x80) for p in events] == [False] * 3 + [True] * 3
    assert [int.from_bytes(p.payload[2:], "big") for p in events] == [160, 320, 480, 480, 480, 480]


async def test_echo(pair) -> None:
    a, b = pair
    b.start_echo()
    collector = FrameCollector()
    a.add_inbound_consumer(collector)
    a.outbound.add(BufferPlayer(tone(440, 0.5, 8000)))
    await asyncio.sleep(0.8)
    heard = collector.samples()
    loud = heard[np.abs(heard) > 500]
    assert len(loud) > 2000
    start = int(np.argmax(np.abs(heard) > 1000))
    assert dominant_hz(heard[start : start + 2400]) == pytest.approx(440, abs=5)


async def test_recorder_tap_writes_sent_audio(tmp_path: Path, pair) -> None:
    a, _ = pair
    path = tmp_path / "sent.wav"
    recorder = a.add_outbound_tap(WavRecorder(path))
    player = a.outbound.add(BufferPlayer(tone(seconds=0.2)))
    await asyncio.wait_for(player.wait(), 2)
    a.remove_outbound_tap(recorder)
    recorder.close()
    assert recorder.frames_written >= 10


async def test_port_allocator_even_ports_and_release() -> None:
    ports = PortAllocator(41000, 41006)
    sessions = [await RtpSession.open(HOST, ports) for _ in range(3)]
    assert sorted(s.local_port for s in sessions) == [41000, 41002, 41004]
    with pytest.raises(PortsExhaustedError):
        await RtpSession.open(HOST, ports)
    sessions[0].close()
    assert ports.in_use == 2
    again = await RtpSession.open(HOST, ports)
    assert again.local_port == sessions[0].local_port
    for s in sessions[1:] + [again]:
        s.close()
    assert ports.in_use == 0


async def test_reinvite_switches_codec_and_hold(pair) -> None:
    a, b = pair
    b.close()  # the peer moves to a new address (re-INVITE): the old one goes quiet
    await asyncio.sleep(0.05)
    peer = await raw_peer()
    offer = create_offer(HOST, b.local_port, codecs=["PCMA"], direction=Direction.SENDONLY, session_version=2)
    _, media = create_answer(SessionDescription.parse(str(offer)), HOST, a.local_port)
    media = media.__class__(**{**{f: getattr(media, f) for f in media.__slots__}, "remote_port": peer.address[1]})
    a.apply(media)
    assert a.direction is Direction.RECVONLY and not a.sending
    await asyncio.sleep(0.1)
    assert not peer.received
    a.direction = Direction.SENDRECV
    await wait_for(lambda: peer.received)
    assert peer.packets[-1].payload_type == 8


async def test_reinvite_with_same_sdp_address_keeps_the_nat_latch() -> None:
    public = await raw_peer()  # where the NATed phone's packets really come from
    session = await RtpSession.open(HOST)
    offer = create_offer("10.20.30.40", 40000)  # the phone's private address, as its SDP says
    _, media = create_answer(SessionDescription.parse(str(offer)), HOST, session.local_port)
    session.apply(media)
    for seq in range(3):
        public.send(RtpPacket(0, seq, 160 * seq, 3, PCMU_SILENCE), session.local_address)
    await wait_for(lambda: session.remote_address == public.address)
    session.apply(media)  # re-INVITE repeating the same SDP
    assert session.remote_address == public.address and session.stats.latches == 1
    moved = await raw_peer()
    _, media2 = create_answer(
        SessionDescription.parse(str(create_offer(HOST, moved.address[1]))), HOST, session.local_port
    )
    session.apply(media2)  # a real change of SDP address is followed
    assert session.remote_address == moved.address
    before = session.stats.packets_foreign_source
    public.send(RtpPacket(0, 9, 160 * 9, 3, PCMU_SILENCE), session.local_address)
    await wait_for(lambda: session.stats.packets_foreign_source == before + 1)  # the old source is gone
    session.close()


async def test_inbound_mix_reaches_only_the_incoming_side(pair) -> None:
    """A speaking ``in`` is heard by the bridged party (``injected=True``), never by ``in`` STT."""
    a, b = pair
    own_voice = FrameCollector()
    incoming_side = FrameCollector()
    b.add_inbound_consumer(own_voice)
    b.add_inbound_consumer(incoming_side, injected=True)
    injected = b.inbound_mix.add(BufferPlayer(tone(700, 0.4, 6000)))
    await asyncio.wait_for(injected.wait(), 2)  # a sends silence packets meanwhile
    samples = incoming_side.samples()
    start = int(np.argmax(np.abs(samples) > 1000))
    assert dominant_hz(samples[start : start + 2400]) == pytest.approx(700, abs=5)
    assert len(samples) < 8000 * 0.6  # paced: one injected frame per received frame, no burst
    assert own_voice.frames and np.max(np.abs(own_voice.samples())) < 100  # only a's silence


async def test_inbound_mix_when_endpoint_sends_nothing() -> None:
    session = await RtpSession.open(HOST, codec=PcmuCodec())
    own_voice = FrameCollector()
    incoming_side = FrameCollector()
    session.add_inbound_consumer(own_voice)
    session.add_inbound_consumer(incoming_side, injected=True)
    player = session.inbound_mix.add(BufferPlayer(tone(700, 0.2, 6000)))
    await asyncio.wait_for(player.wait(), 2)
    session.close()
    assert len(incoming_side.frames) == 10 and own_voice.frames == []
