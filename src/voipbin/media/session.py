"""An RTP session for one call leg: a UDP socket composing the send path on the media clock
(:mod:`.rtp_sender`), the receive path through a jitter buffer to 20 ms PCM16 frames
(:mod:`.rtp_receiver`), RFC 4733 DTMF both ways (:mod:`.dtmf`) and the source check
(:mod:`.latching`).

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
import math
import time
from collections.abc import Callable

from .clock import MediaClock, get_media_clock
from .codecs import Codec, create_codec
from .codecs.telephone_event import TELEPHONE_EVENT_CLOCK_RATE_HZ, DtmfDigit
from .dtmf import DEFAULT_DTMF_DURATION_MS, DEFAULT_DTMF_PAUSE_MS, DtmfReceiver, DtmfSender
from .echo import EchoSource
from .frames import FrameConsumer, FrameQueue
from .jitterbuffer import DEFAULT_CAPACITY_PACKETS, DEFAULT_MAX_DELAY_S, JitterBuffer
from .latching import LATCH_CONFIRM_PACKETS, LATCH_WINDOW_S, Address, SourceFilter
from .mixer import Mixer
from .ports import PortAllocator
from .rtp import RtpPacket, RtpParseError
from .rtp_receiver import RtpReceiver
from .rtp_sender import BorrowedSocket, PacketSink, RtpSender
from .rtp_stats import RtpStats
from .sdp import Direction, NegotiatedMedia

__all__ = ["Address", "FrameConsumer", "RtpSession", "RtpStats"]

logger = logging.getLogger(__name__)

#: RTCP packet types 200-204 show up as RTP payload types 72-76 with the marker bit (RFC 5761 §4)
_RTCP_PAYLOAD_TYPES = range(72, 77)


class RtpSession(asyncio.DatagramProtocol):
    """One RTP stream pair on one UDP port. Create with :meth:`open`, then :meth:`apply`.

    Keyword arguments (all also settable later):
      codec: the codec to send/receive with (normally set by :meth:`apply`).
      remote_address: (host, port) the SDP names: sent to, and the only source accepted
        (see :mod:`voipbin.media.latching` for NAT latching).
      direction: OUR direction; we send only if it sends, the timeout only watches if it receives.
      telephone_event_payload_type: the RFC 4733 PT, or None; telephone_event_clock_rate_hz its
        negotiated clock rate (:mod:`voipbin.media.dtmf`).
      rtp_timeout_s: call ``on_timeout(session)`` once when nothing was received for this long
        (re-armed by the next packet). None disables it.
      on_dtmf: called with a :class:`DtmfDigit` once per received event.
      silence_suppression: when the outbound source is silent, send nothing (and set the
        marker on the first packet after, RFC 3551 §4.1) instead of encoded silence packets.
      symmetric: allow the one NAT latch of :mod:`voipbin.media.latching` (RFC 4961) when the
        SDP address is private; ``latch_window_s``/``latch_confirm_packets`` tune it.

    Parts: ``sender`` (:class:`RtpSender`), ``receiver`` (:class:`RtpReceiver`), ``dtmf_sender``
    and ``dtmf_receiver`` (:mod:`voipbin.media.dtmf`), ``source_filter`` (:class:`SourceFilter`),
    all counting into one ``stats``.
    """

    # slots, the fields the clock tick reads first: each tick walks hundreds of sessions, and every cache line
    # one of them touches is a miss after the kernel's send path has run (bench/media_capacity.py)
    __slots__ = (
        "sender", "_timeout_at", "_rx_pending", "_inbound_sources", "_sending", "_dtmf_jobs", "_sendto", "_remote",
        "outbound", "_direction", "receiver", "dtmf_sender",
        "stats", "inbound_mix", "dtmf_receiver", "_rtp_timeout_s", "on_timeout", "source_filter", "_clock",
        "_transport", "_socket", "_send_via", "_ports", "local_address", "_codec", "_sdp_remote", "_closed",
        "_last_rx", "_time", "_timeout_fired", "__weakref__",
    )

    def __init__(
        self,
        *,
        codec: Codec | None = None,
        remote_address: Address | None = None,
        direction: Direction = Direction.SENDRECV,
        telephone_event_payload_type: int | None = None,
        telephone_event_clock_rate_hz: int = TELEPHONE_EVENT_CLOCK_RATE_HZ,
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
        self.stats = stats = RtpStats()
        #: what we send ("out" audio: what the endpoint hears); add players here
        self.outbound = Mixer()
        #: audio injected on the endpoint's incoming side (a speaking with direction ``in``): heard
        #: by ``injected=True`` consumers (the bridged party), never by the ``in`` consumers
        self.inbound_mix = Mixer()
        self.sender = RtpSender(stats, silence_suppression=silence_suppression)
        self.dtmf_sender = DtmfSender(stats, telephone_event_payload_type, telephone_event_clock_rate_hz)
        self.dtmf_receiver = DtmfReceiver(stats, telephone_event_payload_type, telephone_event_clock_rate_hz, on_dtmf)
        self.receiver = RtpReceiver(stats, self.inbound_mix, self.dtmf_receiver,
                                    jitter_capacity=jitter_capacity, jitter_max_delay_s=jitter_max_delay_s)
        # what the tick looks at before calling into the receiver and the DTMF sender (lists their owners
        # mutate in place): one object each instead of a chain, on the path every stream takes 50 times a second
        self._rx_pending = False  # a packet was received since the last tick, or the jitter buffer holds some
        self._inbound_sources = self.inbound_mix._sources
        self._dtmf_jobs = self.dtmf_sender.jobs
        self._rtp_timeout_s = rtp_timeout_s
        self.on_timeout = on_timeout
        #: which source is accepted, and where we send (:mod:`voipbin.media.latching`)
        self.source_filter = SourceFilter(latching=symmetric, window_s=latch_window_s,
                                          confirm_packets=latch_confirm_packets)
        self.source_filter.reset(remote_address)
        self._clock = clock
        self._transport: asyncio.DatagramTransport | None = None
        #: the transport's own socket, sent on directly (see connection_made); never closed by us
        self._socket: BorrowedSocket | None = None
        self._send_via: PacketSink | None = None
        self._sendto: Callable[[bytes, Address], object] | None = None  # self._send_via.sendto
        self._ports: PortAllocator | None = None
        self.local_address: Address | None = None
        self._codec: Codec | None = None
        self._direction = direction
        self._remote: Address | None = remote_address
        self._sdp_remote: Address | None = remote_address
        self._sending = False
        self._closed = False
        self._last_rx = 0.0
        self._time: Callable[[], float] = time.monotonic  # replaced by the clock's time once open
        self._timeout_fired = False
        self._timeout_at = math.inf  # armed once open (connection_made)
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
        # sendto on the socket itself: the transport's sendto costs ~1 us more per packet (uvloop's address
        # cache and write-buffer bookkeeping; bench/media_capacity.py). The socket object shares the
        # transport's fd and is detached in _shutdown, so the transport alone closes it.
        raw = transport.get_extra_info("socket")
        if raw is not None:
            self._socket = BorrowedSocket(raw.family, raw.type, raw.proto, fileno=raw.fileno())
        self._send_via = self._socket or transport  # type: ignore[assignment]
        self._sendto = self._send_via.sendto  # type: ignore[union-attr]
        sockname = transport.get_extra_info("sockname")
        self.local_address = (sockname[0], sockname[1])
        if self._clock is None:
            self._clock = get_media_clock()
        # the time the clock's ticks report (an injected scheduler's); a stand-in clock without
        # time() ticks on the loop's time
        clock_time = getattr(self._clock, "time", None)
        self._time = clock_time if clock_time is not None else asyncio.get_running_loop().time
        self._last_rx = self._time()
        self._arm_timeout()
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
        self._send_via = self._sendto = None
        if self._socket is not None:
            self._socket.detach()
            self._socket = None
        if self._clock is not None:
            self._clock.unregister(self)
        if self._ports is not None and self.local_address is not None:
            self._ports.release(self.local_address[1])
        self.dtmf_sender.cancel()

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

    @property
    def ssrc(self) -> int:
        """Our SSRC (RFC 3550 §5.1), random per session."""
        return self.sender.ssrc

    @property
    def jitter_buffer(self) -> JitterBuffer:
        return self.receiver.jitter_buffer

    @property
    def silence_suppression(self) -> bool:
        return self.sender.silence_suppression

    @silence_suppression.setter
    def silence_suppression(self, value: bool) -> None:
        self.sender.silence_suppression = value

    @property
    def on_dtmf(self) -> Callable[[DtmfDigit], None] | None:
        """Called with a :class:`DtmfDigit` once per received RFC 4733 event; must not block."""
        return self.dtmf_receiver.on_dtmf

    @on_dtmf.setter
    def on_dtmf(self, callback: Callable[[DtmfDigit], None] | None) -> None:
        self.dtmf_receiver.on_dtmf = callback

    def set_codec(self, codec: Codec) -> None:
        self._codec = codec
        self.sender.set_codec(codec)
        self.receiver.set_codec(codec)
        self._update_sending()

    def set_telephone_event(self, payload_type: int | None, clock_rate_hz: int = TELEPHONE_EVENT_CLOCK_RATE_HZ) -> None:
        """The negotiated RFC 4733 payload type (None: none) and clock rate, for both directions."""
        for part in (self.dtmf_sender, self.dtmf_receiver):
            part.payload_type = payload_type
            part.clock_rate_hz = clock_rate_hz

    def set_remote_address(self, address: Address | None) -> None:
        """A new SDP address: send to ``address`` and accept packets only from it (or, when it is
        private, from the one NAT source latched onto; :mod:`voipbin.media.latching`)."""
        self._sdp_remote = address
        self.source_filter.reset(address)
        self._remote = address
        self._update_sending()

    def apply(self, media: NegotiatedMedia) -> None:
        """Use the result of SDP offer/answer (initial or re-INVITE): codec, remote, direction, DTMF PT
        and clock rate.

        The source policy restarts only when the SDP address differs from the one applied
        before, so a re-INVITE from a NATed phone that repeats its private address keeps the
        latch onto its public one; ``c=0.0.0.0`` (old-style hold) stops sending and keeps it too.
        """
        if self._codec is None or (self._codec.name, self._codec.payload_type) != (media.codec_name, media.payload_type):
            self.set_codec(create_codec(media.codec_name, media.payload_type))
        self.set_telephone_event(media.telephone_event_payload_type, media.telephone_event_clock_rate_hz)
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
        receiver = self.receiver
        (receiver.injected_consumers if injected else receiver.consumers).append(consumer)
        return consumer

    def remove_inbound_consumer(self, consumer: FrameConsumer) -> None:
        """Stop calling ``consumer`` (either kind); unknown consumers are ignored."""
        for consumers in (self.receiver.consumers, self.receiver.injected_consumers):
            if consumer in consumers:
                consumers.remove(consumer)

    def inbound_frames(self, max_frames: int = 250) -> FrameQueue:
        """A new :class:`FrameQueue` fed with the endpoint's own voice (``async for frame in q``).

        Remove it with ``remove_inbound_consumer(q)`` and ``q.close()`` when done.
        """
        queue = FrameQueue(max_frames)
        self.receiver.consumers.append(queue)
        return queue

    def add_outbound_tap(self, tap: FrameConsumer) -> FrameConsumer:
        """Call ``tap(frame)`` with the PCM16 of every audio packet sent ("out" audio, recorders)."""
        self.sender.taps.append(tap)
        return tap

    def remove_outbound_tap(self, tap: FrameConsumer) -> None:
        if tap in self.sender.taps:
            self.sender.taps.remove(tap)

    def flush(self) -> None:
        """Barge-in: drop everything queued for sending; the next tick sends silence."""
        self.outbound.flush()

    def start_echo(self, max_delay_frames: int = 10) -> EchoSource:
        """Send back what is received (flow ``echo`` action). ``stop()`` the returned source to end it."""
        echo = EchoSource(max_delay_frames)
        self.add_inbound_consumer(echo.push)
        self.outbound.add(echo)
        return echo

    # ------------------------------------------------------------------ the tick

    def on_clock_tick(self, frames: int, now: float) -> None:
        """Media clock tick: the timestamp moves on, the RTP timeout is checked, the receiver releases
        what its jitter buffer held, and one 20 ms packet is sent (a DTMF event's, else audio)."""
        sender = self.sender
        sender.timestamp = (sender.timestamp + sender.samples_per_frame * frames) & 0xFFFFFFFF  # sender.advance()
        if now >= self._timeout_at and self._direction.receives:
            self._fire_timeout()
        if self._rx_pending or self._inbound_sources:  # else receiver.tick() has nothing to do
            receiver = self.receiver
            receiver.tick(now)
            self._rx_pending = len(receiver.jitter_buffer) > 0
        if not self._sending:
            return
        if self._dtmf_jobs and self.dtmf_sender.tick(sender, self._send_via, self._remote):  # type: ignore[arg-type]
            return
        # the outbound mixer's common case without a call into it (Mixer.read_payload)
        outbound = self.outbound
        source = outbound.passthrough
        if source is not None:
            payload = source.read_payload(sender.codec)  # type: ignore[arg-type]
            if source.finished:
                outbound.prune()
        else:
            payload = outbound.read_payload(sender.codec)  # type: ignore[arg-type]
        sender.send_payload(payload, self._sendto, self._remote)  # type: ignore[arg-type]

    @property
    def rtp_timeout_s(self) -> float | None:
        """Seconds without a received packet before ``on_timeout`` fires (None: never)."""
        return self._rtp_timeout_s

    @rtp_timeout_s.setter
    def rtp_timeout_s(self, seconds: float | None) -> None:
        self._rtp_timeout_s = seconds
        self._arm_timeout()

    def _arm_timeout(self) -> None:
        """The clock time at which the tick fires the timeout (inf: not watching)."""
        timeout = self._rtp_timeout_s
        self._timeout_at = math.inf if timeout is None or self._timeout_fired else self._last_rx + timeout

    def _fire_timeout(self) -> None:
        self._timeout_fired = True
        self._timeout_at = math.inf
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
        return self.dtmf_sender.send(self.sender, digits, duration_ms, pause_ms)

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
        now = self._time()
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
        if self._rtp_timeout_s is not None:
            self._timeout_at = now + self._rtp_timeout_s
        stats = self.stats
        stats.packets_received += 1
        stats.bytes_received += len(packet.payload)
        self._rx_pending = True
        self.receiver.receive(packet, now)
