"""The receive half of an RTP session: accepted packets -> jitter buffer -> decode -> 20 ms frames.

The session hands over packets that passed its source check (:mod:`voipbin.media.latching`).
:class:`RtpReceiver` orders them in a :class:`~voipbin.media.jitterbuffer.JitterBuffer`, decodes
audio, fills short timestamp gaps (lost packets) with silence, cuts the PCM16 into 20 ms frames
and hands every frame to its consumers; telephone-event packets go to the
:class:`~voipbin.media.dtmf.DtmfReceiver`.

Two kinds of consumers (DESIGN.md "Terms", relative to this leg's endpoint):

* ``consumers`` get ``in`` audio: the endpoint's own voice only (STT ``in``, echo, recorders).
* ``injected_consumers`` get the endpoint's incoming side: its voice plus ``inbound_mix`` (a
  speaking with direction ``in``), what a bridged party hears. On a tick when the endpoint sent
  nothing, the injected frame is delivered to them alone (:meth:`RtpReceiver.tick`).
"""

from __future__ import annotations

import logging

from .codecs import Codec
from .dtmf import DtmfReceiver
from .frames import FrameConsumer
from .jitterbuffer import DEFAULT_CAPACITY_PACKETS, DEFAULT_MAX_DELAY_S, JitterBuffer
from .mixer import Mixer
from .pcm import SAMPLE_WIDTH_BYTES, SAMPLES_PER_FRAME, mix_frames
from .rtp import RtpPacket
from .rtp_stats import RtpStats

logger = logging.getLogger(__name__)

#: received timestamp gaps up to this long (lost packets) are filled with silence frames
MAX_GAP_FILL_SAMPLES = 8000


class RtpReceiver:
    """Jitter buffer, decoding, gap filling and frame delivery for one session's incoming stream.

    inbound_mix: the mixer whose frames are added for ``injected_consumers`` (the session's).
    dtmf: where telephone-event packets go (its ``payload_type`` says which those are).
    """

    def __init__(
        self,
        stats: RtpStats,
        inbound_mix: Mixer,
        dtmf: DtmfReceiver,
        *,
        jitter_capacity: int = DEFAULT_CAPACITY_PACKETS,
        jitter_max_delay_s: float = DEFAULT_MAX_DELAY_S,
    ) -> None:
        self.stats = stats
        self.inbound_mix = inbound_mix
        self.dtmf = dtmf
        self.jitter_buffer = JitterBuffer(jitter_capacity, jitter_max_delay_s)
        #: "in" consumers: the endpoint's own voice
        self.consumers: list[FrameConsumer] = []
        #: the endpoint's incoming side: its voice with ``inbound_mix`` mixed in
        self.injected_consumers: list[FrameConsumer] = []
        self.codec: Codec | None = None
        self.payload_type = 0
        self._frame_bytes = SAMPLE_WIDTH_BYTES * SAMPLES_PER_FRAME
        self._pending = bytearray()
        self._next_timestamp: int | None = None
        self._remote_ssrc: int | None = None
        self._frames_since_tick = 0

    def set_codec(self, codec: Codec) -> None:
        self.codec = codec
        self.payload_type = codec.payload_type
        self._frame_bytes = SAMPLE_WIDTH_BYTES * codec.SAMPLES_PER_FRAME
        self._pending.clear()

    def receive(self, packet: RtpPacket, now: float) -> None:
        """An accepted packet: a new SSRC restarts the jitter buffer; released packets are delivered."""
        if packet.ssrc != self._remote_ssrc:
            if self._remote_ssrc is not None:
                self.jitter_buffer.reset()
                self._next_timestamp = None
            self._remote_ssrc = packet.ssrc
        for ready in self.jitter_buffer.put(packet, now):
            self.deliver(ready)

    def tick(self, now: float) -> None:
        """Media clock tick: release packets held past their delay; if the endpoint sent no frame
        since the last tick, give the injected consumers ``inbound_mix`` alone."""
        if len(self.jitter_buffer):
            for packet in self.jitter_buffer.poll(now):
                self.deliver(packet)
        if self._frames_since_tick:
            self._frames_since_tick = 0
        elif len(self.inbound_mix):
            injected = self.inbound_mix.read_frame()  # the endpoint is silent: injected audio alone
            if injected is not None:
                self._deliver_to(self.injected_consumers, injected)

    def deliver(self, packet: RtpPacket) -> None:
        """A packet in playout order: audio is decoded to frames, telephone-events go to DTMF."""
        codec = self.codec
        if codec is not None and packet.payload_type == self.payload_type:
            pcm = codec.decode(packet.payload)
            expected = self._next_timestamp
            if expected is not None and not packet.marker:
                gap = ((packet.timestamp - expected + 0x80000000) & 0xFFFFFFFF) - 0x80000000
                if 0 < gap <= MAX_GAP_FILL_SAMPLES:
                    self.stats.gap_frames_filled += gap // codec.SAMPLES_PER_FRAME
                    self._emit(bytes(SAMPLE_WIDTH_BYTES * gap))
            self._next_timestamp = (packet.timestamp + len(pcm) // SAMPLE_WIDTH_BYTES) & 0xFFFFFFFF
            self._emit(pcm)
        elif self.dtmf.payload_type is not None and packet.payload_type == self.dtmf.payload_type:
            self.dtmf.receive(packet)
        else:
            self.stats.packets_unknown_payload_type += 1

    def _emit(self, pcm: bytes) -> None:
        size = self._frame_bytes
        pending = self._pending
        if not pending and len(pcm) == size:
            self.emit_frame(pcm)
            return
        pending += pcm
        while len(pending) >= size:
            frame = bytes(pending[:size])
            del pending[:size]
            self.emit_frame(frame)

    def emit_frame(self, frame: bytes) -> None:
        """Hand one 20 ms frame the endpoint sent to the consumers (see module docstring)."""
        self._frames_since_tick += 1
        self.stats.frames_delivered += 1
        self._deliver_to(self.consumers, frame)  # "in": the endpoint's own voice only
        injected = self.inbound_mix.read_frame() if len(self.inbound_mix) else None
        if self.injected_consumers:
            self._deliver_to(self.injected_consumers, frame if injected is None else mix_frames([frame, injected]))

    def _deliver_to(self, consumers: list[FrameConsumer], frame: bytes) -> None:
        for consumer in consumers:
            try:
                consumer(frame)
            except Exception:
                logger.exception("inbound frame consumer %r failed", consumer)
