"""The send half of an RTP session: one packet per media clock tick (RFC 3550 §5.1, RFC 3551 §4.1).

Per tick the session calls :meth:`RtpSender.advance` (the RTP timestamp moves by one frame per
elapsed 20 ms tick, whether or not a packet goes out, so the peer sees real time pass), then
either :meth:`RtpSender.send_audio` (one encoded payload from the outbound source) or, while a
DTMF event plays, :meth:`RtpSender.send_packet` with a telephone-event payload
(:mod:`voipbin.media.dtmf`). Sequence number and timestamp start at random values (RFC 3550
§5.1) and wrap at 16 and 32 bits.
"""

from __future__ import annotations

import secrets
import socket
import struct
from collections.abc import Callable
from typing import Protocol

from .codecs import Codec
from .frames import FrameConsumer
from .latching import Address
from .pcm import SAMPLES_PER_FRAME
from .rtp import pack_header
from .rtp_stats import RtpStats
from .sources import AudioSource

#: the fixed header with its first two octets as one 16-bit field (V=2 and the M/PT octet): one argument less
_pack = struct.Struct("!HHII").pack


class BorrowedSocket(socket.socket):
    """A socket object on a descriptor someone else owns (an RTP session's transport): never closes it, not
    even when garbage-collected (a plain socket object would close the descriptor number, by then maybe
    another socket's). Sending on it directly costs ~1 us less per packet than uvloop's transport.sendto."""

    def __del__(self) -> None:
        self.detach()


class PacketSink(Protocol):
    """Where packets go: a UDP socket or an asyncio datagram transport (``sendto(data, address)``; a
    socket raises OSError, e.g. BlockingIOError on a full send buffer: counted, the packet dropped)."""

    def sendto(self, data: bytes, address: Address, /) -> object: ...


class RtpSender:
    """Sequence, timestamp, SSRC and marker of our outgoing stream; the outbound taps.

    silence_suppression: when the source is silent send nothing (and set the marker on the
    first packet after, RFC 3551 §4.1) instead of an encoded silence packet.
    taps: called with the PCM16 of every audio packet sent ("out" audio: recorders, STT ``out``).
    """

    # the fields every packet reads first (one or two cache lines: a tick walks hundreds of senders)
    __slots__ = ("timestamp", "samples_per_frame", "seq", "marker_next", "_first_word", "ssrc", "codec", "stats",
                 "taps", "silence_suppression", "_silence")

    def __init__(self, stats: RtpStats, *, silence_suppression: bool = False) -> None:
        self.stats = stats
        self.silence_suppression = silence_suppression
        self.taps: list[FrameConsumer] = []
        self.ssrc = secrets.randbits(32)
        self.seq = secrets.randbits(16)
        #: RTP timestamp of the current tick (in samples of the codec's clock rate)
        self.timestamp = secrets.randbits(32)
        self.marker_next = True  # RFC 3551 §4.1: first packet of the stream
        self.codec: Codec | None = None
        self._first_word = 0x8000  # the header's first two octets: V=2, no P/X/CC, marker 0, the payload type
        self.samples_per_frame = SAMPLES_PER_FRAME
        self._silence = b""

    def set_codec(self, codec: Codec) -> None:
        self.codec = codec
        self._first_word = 0x8000 | codec.payload_type
        self.samples_per_frame = codec.SAMPLES_PER_FRAME
        self._silence = codec.silence_payload()

    @property
    def payload_type(self) -> int:
        """The audio payload type (the codec's; 0 before :meth:`set_codec`)."""
        return self._first_word & 0x7F

    def advance(self, frames: int) -> int:
        """Move the timestamp on by ``frames`` 20 ms frames; returns the new timestamp."""
        self.timestamp = timestamp = (self.timestamp + self.samples_per_frame * frames) & 0xFFFFFFFF
        return timestamp

    def send_audio(self, source: AudioSource, transport: PacketSink, remote: Address) -> None:
        """Send this tick's packet: ``source``'s next payload, or encoded silence (or nothing,
        with silence suppression). Needs a codec (:meth:`set_codec`)."""
        self.send_payload(source.read_payload(self.codec), transport.sendto, remote)  # type: ignore[arg-type]

    def send_payload(self, payload: bytes | None, sendto: Callable[[bytes, Address], object], remote: Address) -> None:
        """Send one audio packet carrying ``payload`` (one frame encoded with the codec), or encoded silence
        when it is None (nothing, with silence suppression: the next packet then has the marker).

        The hot path (once per stream per 20 ms, the session's tick): one 12-byte header packed in front of
        the payload, one ``sendto(packet, remote)`` (the socket's bound method); a send the socket refuses
        (full buffer) is counted in ``stats.send_errors`` and dropped (a late RTP packet is worth nothing)."""
        if payload is None:
            if self.silence_suppression:
                self.marker_next = True
                return
            payload = self._silence
        seq = self.seq
        self.seq = (seq + 1) & 0xFFFF
        if self.marker_next:
            self.marker_next = False
            header = _pack(self._first_word | 0x80, seq, self.timestamp, self.ssrc)
        else:
            header = _pack(self._first_word, seq, self.timestamp, self.ssrc)
        stats = self.stats
        try:
            sendto(header + payload, remote)
        except OSError:
            stats.send_errors += 1
            return
        stats.packets_sent += 1
        stats.bytes_sent += len(payload)
        if self.taps:
            pcm = self.codec.decode(payload)  # type: ignore[union-attr]
            for tap in self.taps:
                tap(pcm)

    def send_packet(
        self,
        transport: PacketSink,
        remote: Address,
        payload_type: int,
        marker: bool,
        timestamp: int,
        payload: bytes,
    ) -> None:
        """Send one packet of our stream with its own payload type and timestamp (telephone-event)."""
        seq = self.seq
        self.seq = (seq + 1) & 0xFFFF
        try:
            transport.sendto(pack_header(payload_type, marker, seq, timestamp, self.ssrc) + payload, remote)
        except OSError:
            self.stats.send_errors += 1
            return
        self.stats.packets_sent += 1
        self.stats.bytes_sent += len(payload)
