"""An RTP session for one call leg: a UDP socket, the send path on the media clock, the
receive path through a jitter buffer to 20 ms PCM16 frames, and RFC 4733 DTMF.

Directions (DESIGN.md "Terms", relative to this leg's endpoint):

* ``in`` — what the endpoint says. Inbound consumers (STT ``in``, echo, recorders) get only
  the endpoint's own voice, never audio we inject.
* the endpoint's *incoming side* — its voice plus ``inbound_mix`` (a speaking with direction
  ``in``): what whoever it is bridged to hears. Consumers added with ``injected=True`` (a bridge)
  get it; on a clock tick when the endpoint sent nothing, the injected frame is delivered to
  them alone.
* ``out`` — what the endpoint hears: the ``outbound`` mixer, seen by the outbound taps (STT
  ``out``, recorders).

Send path (every 20 ms tick of the one :class:`~voipbin.media.clock.MediaClock`):
``outbound`` mixer -> one encoded payload -> 12-byte header -> ``transport.sendto``.
Receive path: datagram -> :class:`RtpPacket` -> source check -> :class:`JitterBuffer` ->
decode -> 20 ms frames to the inbound consumers; telephone-event packets -> ``on_dtmf``.

Source check (RTP hijack defence, :mod:`voipbin.media.latching`): packets are accepted only
from the address the SDP names; symmetric-RTP latching (RFC 4961) happens once, within the
first seconds, and only when the SDP address is private or unreachable (NAT). Every other
packet is dropped before the jitter buffer and counted in ``stats.packets_foreign_source``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .clock import MediaClock, get_media_clock
from .codecs import Codec, create_codec
from .codecs.telephone_event import END_PACKET_REPEATS, DtmfDigit, TelephoneEvent, TelephoneEventError, event_for_digit
from .echo import EchoSource
from .frames import FrameQueue
from .jitterbuffer import DEFAULT_CAPACITY_PACKETS, DEFAULT_MAX_DELAY_S, JitterBuffer
from .latching import LATCH_CONFIRM_PACKETS, LATCH_WINDOW_S, SourceFilter
from .mixer import Mixer, mix_frames
from .ports import PortAllocator
from .rtp import RtpPacket, RtpParseError, pack_header
from .sdp import Direction, NegotiatedMedia

logger = logging.getLogger(__name__)

Address = tuple[str, int]
FrameConsumer = Callable[[bytes], None]

DEFAULT_DTMF_DURATION_MS = 100
DEFAULT_DTMF_PAUSE_MS = 60
#: received timestamp gaps up to this long (lost packets) are filled with silence frames
MAX_GAP_FILL_SAMPLES = 8000
#: RTCP packet types 200-204 show up as RTP payload types 72-76 with the marker bit (RFC 5761 §4)
_RTCP_PAYLOAD_TYPES = range(72, 77)


@dataclass(slots=True)
class RtpStats:
    """Counters of one session. Octet counts are payload octets (RFC 3550 §6.4.1).

    ``packets_foreign_source``: packets dropped by the source rule (:mod:`voipbin.media.latching`:
    another sender, or a NAT source not yet confirmed); ``latches``: 0, or 1 once a NATed
    endpoint's source was latched onto.
    """

    packets_sent: int = 0
    bytes_sent: int = 0
    packets_received: int = 0
    bytes_received: int = 0
    packets_invalid: int = 0
    packets_foreign_source: int = 0
    packets_unknown_payload_type: int = 0
    frames_delivered: int = 0
    gap_frames_filled: int = 0
    dtmf_received: int = 0
    dtmf_sent: int = 0
    latches: int = 0
    timeouts: int = 0
    send_errors: int = 0


class RtpSession(asyncio.DatagramProtocol):
    """One RTP stream pair on one UDP port. Create with :meth:`open`, then :meth:`apply`.

    Keyword arguments (all also settable later):
      codec: the codec to send/receive with (normally set by :meth:`apply`).
      remote_address: (host, port) the SDP names: sent to, and the only source accepted
        (see :mod:`voipbin.media.latching` for NAT latching).
      direction: OUR direction; we send only if it sends, the timeout only watches if it receives.
      telephone_event_payload_type: the RFC 4733 PT, or None.
      rtp_timeout_s: call ``on_timeout(session)`` once when nothing was received for this long
        (re-armed by the next packet). None disables it.
      on_dtmf: called with a :class:`DtmfDigit` once per received event.
      silence_suppression: when the outbound source is silent, send nothing (and set the
        marker on the first packet after, RFC 3551 §4.1) instead of encoded silence packets.
      symmetric: allow the one NAT latch of :mod:`voipbin.media.latching` (RFC 4961) when the
        SDP address is private; ``latch_window_s``/``latch_confirm_packets`` tune it.
    """

    def __init__(
        self,
        *,
        codec: Codec | None = None,
        remote_address: Address | None = None,
        direction: Direction = Direction.SENDRECV,
        telephone_event_payload_type: int | None = None,
        clock: MediaClock | None = None,
        rtp_timeout_s: float | None = None,
        on_timeout: Callable[[RtpSession], None] | None = None,
        on_dtmf: Callable[[DtmfDigit], None] | None = None,
        silence_suppression: bool = False,
        symmetric: bool = True,
        latch_window_s: float = LATCH_WINDOW_S,
        latch_confirm_packets: int = LATCH_CONFIRM_PACKETS,
        jitter_capacity: int = DEFAULT_CAPACITY_PACKETS,
        jitter_max_delay_s: float = DEFAULT_MAX_DELAY_S,
    ) -> None:
        self.stats = RtpStats()
        #: what we send ("out" audio: what the endpoint hears); add players here
        self.outbound = Mixer()
        #: audio injected on the endpoint's incoming side (a speaking with direction ``in``): heard
        #: by ``injected=True`` consumers (the bridged party), never by the ``in`` consumers
        self.inbound_mix = Mixer()
        self._rx_frames_since_tick = 0
        self.jitter_buffer = JitterBuffer(jitter_capacity, jitter_max_delay_s)
        self.rtp_timeout_s = rtp_timeout_s
        self.on_timeout = on_timeout
        self.on_dtmf = on_dtmf
        self.silence_suppression = silence_suppression
        #: which source is accepted, and where we send (:mod:`voipbin.media.latching`)
        self.source_filter = SourceFilter(latching=symmetric, window_s=latch_window_s,
                                          confirm_packets=latch_confirm_packets)
        self.source_filter.reset(remote_address)
        self.ssrc = secrets.randbits(32)
        self._seq = secrets.randbits(16)
        self._timestamp = secrets.randbits(32)
        self._first_timestamp: int | None = None
        self._marker_next = True  # RFC 3551 §4.1: first packet of the stream
        self._clock = clock
        self._transport: asyncio.DatagramTransport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ports: PortAllocator | None = None
        self.local_address: Address | None = None
        self._codec: Codec | None = None
        self._payload_type = 0
        self._samples_per_frame = 160
        self._silence = b""
        self._direction = direction
        self._remote: Address | None = remote_address
        self._sdp_remote: Address | None = remote_address
        self._remote_ssrc: int | None = None
        self._te_pt = telephone_event_payload_type
        self._sending = False
        self._closed = False
        self._last_rx = 0.0
        self._timeout_fired = False
        self._consumers: list[FrameConsumer] = []
        self._injected_consumers: list[FrameConsumer] = []
        self._taps: list[FrameConsumer] = []
        self._rx_pending = bytearray()
        self._rx_next_timestamp: int | None = None
        self._dtmf_current: tuple[int, TelephoneEvent] | None = None
        self._dtmf_reported_timestamp: int | None = None
        self._dtmf_jobs: list[tuple[Iterator[tuple[bytes, bool, int] | None], asyncio.Future[None]]] = []
        if codec is not None:
            self.set_codec(codec)

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    async def open(
        cls,
        host: str,
        ports: PortAllocator | None = None,
        *,
        port: int = 0,
        **kwargs: object,
    ) -> RtpSession:
        """Bind a session on ``host``: an even port from ``ports``, else ``port`` (0 = any).

        The session receives at once and registers with the media clock (the process-wide
        one unless ``clock=`` is given); it sends once it has a codec, a remote address and
        a sending direction. kwargs are those of the constructor. Raises
        PortsExhaustedError or OSError.
        """
        session = cls(**kwargs)  # type: ignore[arg-type]
        if ports is not None:
            await ports.bind(host, lambda: session)
            session._ports = ports
        else:
            await asyncio.get_running_loop().create_datagram_endpoint(lambda: session, local_addr=(host, port))
        return session

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._loop = asyncio.get_running_loop()
        sockname = transport.get_extra_info("sockname")
        self.local_address = (sockname[0], sockname[1])
        self._last_rx = self._loop.time()
        if self._clock is None:
            self._clock = get_media_clock()
        self._clock.register(self)
        self._update_sending()

    def connection_lost(self, exc: Exception | None) -> None:
        self._shutdown()

    def error_received(self, exc: Exception) -> None:
        """ICMP errors (port unreachable while the peer is not listening yet): counted, ignored."""
        self.stats.send_errors += 1

    def close(self) -> None:
        """Stop sending and receiving, close the socket, give the port back. Idempotent."""
        if self._transport is not None:
            self._transport.close()
        self._shutdown()

    def _shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._sending = False
        if self._clock is not None:
            self._clock.unregister(self)
        if self._ports is not None and self.local_address is not None:
            self._ports.release(self.local_address[1])
        for _, future in self._dtmf_jobs:
            if not future.done():
                future.cancel()
        self._dtmf_jobs.clear()

    @property
    def closed(self) -> bool:
        return self._closed

    # ------------------------------------------------------------------ configuration

    @property
    def local_port(self) -> int:
        """The bound UDP port (put it in the SDP m= line)."""
        assert self.local_address is not None, "session not open"
        return self.local_address[1]

    @property
    def codec(self) -> Codec | None:
        return self._codec

    @property
    def direction(self) -> Direction:
        return self._direction

    @direction.setter
    def direction(self, direction: Direction) -> None:
        self._direction = direction
        self._update_sending()

    @property
    def remote_address(self) -> Address | None:
        """Where packets go now: the SDP address, or the NAT source latched onto (None: nowhere)."""
        return self._remote

    @property
    def sending(self) -> bool:
        return self._sending

    def set_codec(self, codec: Codec) -> None:
        self._codec = codec
        self._payload_type = codec.payload_type
        self._samples_per_frame = codec.SAMPLES_PER_FRAME
        self._silence = codec.silence_payload()
        self._rx_pending.clear()
        self._update_sending()

    def set_remote_address(self, address: Address | None) -> None:
        """A new SDP address: send to ``address`` and accept packets only from it (or, when it is
        private, from the one NAT source latched onto; :mod:`voipbin.media.latching`)."""
        self._sdp_remote = address
        self.source_filter.reset(address)
        self._remote = address
        self._update_sending()

    def apply(self, media: NegotiatedMedia) -> None:
        """Use the result of SDP offer/answer (initial or re-INVITE): codec, remote, direction, DTMF PT.

        The source policy restarts only when the SDP address differs from the one applied
        before, so a re-INVITE from a NATed phone that repeats its private address keeps the
        latch onto its public one; ``c=0.0.0.0`` (old-style hold) stops sending and keeps it too.
        """
        if self._codec is None or (self._codec.name, self._codec.payload_type) != (media.codec_name, media.payload_type):
            self.set_codec(create_codec(media.codec_name, media.payload_type))
        self._te_pt = media.telephone_event_payload_type
        self._direction = media.direction
        remote = media.remote_address
        if remote is None:
            self._remote = None
        elif remote != self._sdp_remote:
            self.set_remote_address(remote)
        else:
            self._remote = self.source_filter.send_address
        self._update_sending()

    def _update_sending(self) -> None:
        self._sending = (
            not self._closed
            and self._transport is not None
            and self._codec is not None
            and self._remote is not None
            and self._direction.sends
        )

    # ------------------------------------------------------------------ consumers

    def add_inbound_consumer(self, consumer: FrameConsumer, *, injected: bool = False) -> FrameConsumer:
        """Call ``consumer(frame)`` with every 20 ms PCM16 frame the endpoint says (``in`` audio: its
        own voice only). ``injected=True``: its incoming side instead, with ``inbound_mix`` mixed
        in (what a bridged party hears). Must not block."""
        (self._injected_consumers if injected else self._consumers).append(consumer)
        return consumer

    def remove_inbound_consumer(self, consumer: FrameConsumer) -> None:
        """Stop calling ``consumer`` (either kind); unknown consumers are ignored."""
        for consumers in (self._consumers, self._injected_consumers):
            if consumer in consumers:
                consumers.remove(consumer)

    def inbound_frames(self, max_frames: int = 250) -> FrameQueue:
        """A new :class:`FrameQueue` fed with the endpoint's own voice (``async for frame in q``).

        Remove it with ``remove_inbound_consumer(q)`` and ``q.close()`` when done.
        """
        queue = FrameQueue(max_frames)
        self._consumers.append(queue)
        return queue

    def add_outbound_tap(self, tap: FrameConsumer) -> FrameConsumer:
        """Call ``tap(frame)`` with the PCM16 of every audio packet sent ("out" audio, recorders)."""
        self._taps.append(tap)
        return tap

    def remove_outbound_tap(self, tap: FrameConsumer) -> None:
        if tap in self._taps:
            self._taps.remove(tap)

    def flush(self) -> None:
        """Barge-in: drop everything queued for sending; the next tick sends silence."""
        self.outbound.flush()

    def start_echo(self, max_delay_frames: int = 10) -> EchoSource:
        """Send back what is received (flow ``echo`` action). ``stop()`` the returned source to end it."""
        echo = EchoSource(max_delay_frames)
        self.add_inbound_consumer(echo.push)
        self.outbound.add(echo)
        return echo

    # ------------------------------------------------------------------ send path

    def on_clock_tick(self, frames: int, now: float) -> None:
        """Media clock tick: send one 20 ms packet (see module docstring)."""
        self._timestamp = timestamp = (self._timestamp + self._samples_per_frame * frames) & 0xFFFFFFFF
        if self.rtp_timeout_s is not None and not self._timeout_fired and now - self._last_rx >= self.rtp_timeout_s:
            if self._direction.receives:
                self._fire_timeout()
        if len(self.jitter_buffer):
            for packet in self.jitter_buffer.poll(now):
                self._deliver(packet)
        if self._rx_frames_since_tick:
            self._rx_frames_since_tick = 0
        elif len(self.inbound_mix):
            injected = self.inbound_mix.read_frame()  # the endpoint is silent: injected audio alone
            if injected is not None:
                self._deliver_to(self._injected_consumers, injected)
        if not self._sending:
            return
        if self._dtmf_jobs and self._dtmf_tick():
            return
        payload = self.outbound.read_payload(self._codec)  # type: ignore[arg-type]
        if payload is None:
            if self.silence_suppression:
                self._marker_next = True
                return
            payload = self._silence
        marker = self._marker_next
        self._marker_next = False
        seq = self._seq
        self._transport.sendto(  # type: ignore[union-attr]
            pack_header(self._payload_type, marker, seq, timestamp, self.ssrc) + payload, self._remote
        )
        self._seq = (seq + 1) & 0xFFFF
        stats = self.stats
        stats.packets_sent += 1
        stats.bytes_sent += len(payload)
        if self._taps:
            pcm = self._codec.decode(payload)  # type: ignore[union-attr]
            for tap in self._taps:
                tap(pcm)

    def _send_raw(self, payload_type: int, marker: bool, timestamp: int, payload: bytes) -> None:
        self._transport.sendto(  # type: ignore[union-attr]
            pack_header(payload_type, marker, self._seq, timestamp, self.ssrc) + payload, self._remote
        )
        self._seq = (self._seq + 1) & 0xFFFF
        self.stats.packets_sent += 1
        self.stats.bytes_sent += len(payload)

    def _fire_timeout(self) -> None:
        self._timeout_fired = True
        self.stats.timeouts += 1
        if self.on_timeout is not None:
            try:
                self.on_timeout(self)
            except Exception:
                logger.exception("on_timeout callback failed")

    # ------------------------------------------------------------------ DTMF send (RFC 4733 §2.5)

    def send_dtmf(
        self, digits: str, duration_ms: int = DEFAULT_DTMF_DURATION_MS, pause_ms: int = DEFAULT_DTMF_PAUSE_MS
    ) -> asyncio.Future[None]:
        """Queue DTMF digits as RFC 4733 events (audio is replaced while an event plays).

        Returns a future done when the last end packet was sent. Raises TelephoneEventError
        for a non-DTMF character, RuntimeError if no telephone-event PT was negotiated.
        """
        if self._te_pt is None:
            raise RuntimeError("no telephone-event payload type negotiated")
        events = [event_for_digit(d) for d in digits]
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._dtmf_jobs.append((self._dtmf_packets(events, duration_ms, pause_ms), future))
        return future

    def _dtmf_packets(self, events: list[int], duration_ms: int, pause_ms: int) -> Iterator[tuple[bytes, bool, int] | None]:
        """Per tick: (payload, marker, timestamp) of an event packet, or None for a tick of audio."""
        frame_ms = 1000 * self._samples_per_frame // 8000
        for index, event in enumerate(events):
            start = self._timestamp
            duration = 0
            marker = True
            while duration < duration_ms * 8:
                duration = min(duration + self._samples_per_frame, 0xFFFF)
                yield TelephoneEvent(event, end=False, duration=duration).serialize(), marker, start
                marker = False
            end_payload = TelephoneEvent(event, end=True, duration=duration).serialize()
            for _ in range(END_PACKET_REPEATS):
                yield end_payload, False, start
            self.stats.dtmf_sent += 1
            if index < len(events) - 1:
                for _ in range(max(0, pause_ms // frame_ms)):
                    yield None

    def _dtmf_tick(self) -> bool:
        """Send this tick's DTMF packet; False when this tick carries audio instead."""
        packets, future = self._dtmf_jobs[0]
        item = next(packets, StopIteration)
        if item is StopIteration:
            self._dtmf_jobs.pop(0)
            if not future.done():
                future.set_result(None)
            return False
        if item is None or self._te_pt is None:
            return False
        payload, marker, timestamp = item  # type: ignore[misc]
        self._send_raw(self._te_pt, marker, timestamp, payload)
        return True

    # ------------------------------------------------------------------ receive path

    def datagram_received(self, data: bytes, addr: Address) -> None:  # type: ignore[override]
        """Never raises: malformed packets are counted in ``stats.packets_invalid``."""
        try:
            packet = RtpPacket.parse(data)
        except RtpParseError:
            self.stats.packets_invalid += 1
            return
        if packet.marker and packet.payload_type in _RTCP_PAYLOAD_TYPES:
            self.stats.packets_invalid += 1  # RTCP sent to the RTP port (rtcp-mux): ignored
            return
        try:
            self._receive(packet, addr)
        except Exception:
            self.stats.packets_invalid += 1
            logger.exception("RTP receive failed")

    def _receive(self, packet: RtpPacket, addr: Address) -> None:
        now = self._loop.time()  # type: ignore[union-attr]
        source = self.source_filter
        was_latched = source.latched is not None
        if not source.accept(addr, packet.ssrc, now):
            self.stats.packets_foreign_source += 1
            return
        if not was_latched and source.latched is not None:
            self.stats.latches += 1
            if self._remote is not None:
                self._remote = source.latched
            logger.info("RTP latched onto %s:%s (SDP address %s)", *source.latched, source.sdp_address)
        self._last_rx = now
        self._timeout_fired = False
        stats = self.stats
        stats.packets_received += 1
        stats.bytes_received += len(packet.payload)
        if packet.ssrc != self._remote_ssrc:
            if self._remote_ssrc is not None:
                self.jitter_buffer.reset()
                self._rx_next_timestamp = None
            self._remote_ssrc = packet.ssrc
        for ready in self.jitter_buffer.put(packet, now):
            self._deliver(ready)

    def _deliver(self, packet: RtpPacket) -> None:
        codec = self._codec
        if codec is not None and packet.payload_type == self._payload_type:
            pcm = codec.decode(packet.payload)
            expected = self._rx_next_timestamp
            if expected is not None and not packet.marker:
                gap = ((packet.timestamp - expected + 0x80000000) & 0xFFFFFFFF) - 0x80000000
                if 0 < gap <= MAX_GAP_FILL_SAMPLES:
                    frames = gap // codec.SAMPLES_PER_FRAME
                    self.stats.gap_frames_filled += frames
                    self._emit(bytes(2 * gap))
            self._rx_next_timestamp = (packet.timestamp + len(pcm) // 2) & 0xFFFFFFFF
            self._emit(pcm)
        elif self._te_pt is not None and packet.payload_type == self._te_pt:
            self._receive_dtmf(packet)
        else:
            self.stats.packets_unknown_payload_type += 1

    def _emit(self, pcm: bytes) -> None:
        size = 2 * self._samples_per_frame
        pending = self._rx_pending
        if not pending and len(pcm) == size:
            self._emit_frame(pcm)
            return
        pending += pcm
        while len(pending) >= size:
            frame = bytes(pending[:size])
            del pending[:size]
            self._emit_frame(frame)

    def _emit_frame(self, frame: bytes) -> None:
        self._rx_frames_since_tick += 1
        self.stats.frames_delivered += 1
        self._deliver_to(self._consumers, frame)  # "in": the endpoint's own voice only
        injected = self.inbound_mix.read_frame() if len(self.inbound_mix) else None
        if self._injected_consumers:
            self._deliver_to(self._injected_consumers, frame if injected is None else mix_frames([frame, injected]))

    def _deliver_to(self, consumers: list[FrameConsumer], frame: bytes) -> None:
        for consumer in consumers:
            try:
                consumer(frame)
            except Exception:
                logger.exception("inbound frame consumer %r failed", consumer)

    def _receive_dtmf(self, packet: RtpPacket) -> None:
        try:
            event = TelephoneEvent.parse(packet.payload)
        except TelephoneEventError:
            self.stats.packets_invalid += 1
            return
        timestamp = packet.timestamp
        if event.digit is None or timestamp == self._dtmf_reported_timestamp:
            return
        current = self._dtmf_current
        if current is not None and current[0] != timestamp:
            self._report_dtmf(*current)  # its end packets were all lost
        if event.end:
            self._report_dtmf(timestamp, event)
        else:
            self._dtmf_current = (timestamp, event)

    def _report_dtmf(self, timestamp: int, event: TelephoneEvent) -> None:
        self._dtmf_current = None
        self._dtmf_reported_timestamp = timestamp
        self.stats.dtmf_received += 1
        if self.on_dtmf is not None:
            digit = DtmfDigit(event.digit or "", event.duration // 8, event.volume, timestamp)
            try:
                self.on_dtmf(digit)
            except Exception:
                logger.exception("on_dtmf callback failed")
