"""A reordering jitter buffer for received RTP packets.

Packets are released in sequence-number order (16-bit wraparound aware, RFC 3550 §A.1)
as soon as they are contiguous. A gap is given up on (the missing packets counted as
lost) when more than ``capacity`` packets wait behind it, or when the oldest waiting
packet has waited ``max_delay_s``. A packet older than the last one released is late
and dropped. A jump of more than ``MAX_DROPOUT`` packets is believed only when the
next packet continues from it (RFC 3550 §A.1 probation), then the buffer resynchronises.
"""

from __future__ import annotations

from dataclasses import dataclass

from .rtp import RtpPacket, seq_diff

DEFAULT_CAPACITY_PACKETS = 5
DEFAULT_MAX_DELAY_S = 0.06
MAX_DROPOUT = 3000
MAX_MISORDER = 100


@dataclass(slots=True)
class JitterBufferStats:
    released: int = 0
    lost: int = 0
    late: int = 0
    duplicate: int = 0
    resyncs: int = 0


class JitterBuffer:
    """Reorders packets of one SSRC; see the module docstring for the policy."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY_PACKETS, max_delay_s: float = DEFAULT_MAX_DELAY_S) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self.max_delay_s = max_delay_s
        self.stats = JitterBufferStats()
        self._next: int | None = None
        self._held: dict[int, tuple[RtpPacket, float]] = {}
        self._probation_seq: int | None = None
        self._probation_packet: RtpPacket | None = None

    def __len__(self) -> int:
        return len(self._held)

    @property
    def expected_sequence(self) -> int | None:
        """The sequence number the buffer waits for next (None before the first packet)."""
        return self._next

    def reset(self) -> None:
        """Forget all state (e.g. the sender's SSRC changed). Held packets are dropped."""
        self._next = None
        self._held.clear()
        self._probation_seq = None

    def put(self, packet: RtpPacket, now: float = 0.0) -> list[RtpPacket]:
        """Add a packet (arrival time ``now``, monotonic seconds); returns packets now ready, in order."""
        seq = packet.sequence_number
        if self._next is None:
            self._next = seq
        distance = seq_diff(seq, self._next)
        if distance > MAX_DROPOUT or distance < -MAX_MISORDER:
            if self._probation_seq is not None and seq == self._probation_seq:
                self.stats.resyncs += 1
                self._held.clear()
                self._next = (seq - 1) & 0xFFFF
                assert self._probation_packet is not None
                self._held[self._next] = (self._probation_packet, now)
                distance = 1
            else:
                self._probation_seq = (seq + 1) & 0xFFFF
                self._probation_packet = packet
                return []
        self._probation_seq = None
        if distance < 0:
            self.stats.late += 1
            return []
        if seq in self._held:
            self.stats.duplicate += 1
            return []
        self._held[seq] = (packet, now)
        ready = self._release_contiguous()
        if len(self._held) > self.capacity:
            ready.extend(self._skip_gap())
        return ready

    def poll(self, now: float) -> list[RtpPacket]:
        """Give up on a gap whose oldest waiting packet arrived more than max_delay_s before ``now``."""
        if not self._held:
            return []
        oldest = min(arrival for _, arrival in self._held.values())
        if now - oldest < self.max_delay_s:
            return []
        return self._skip_gap()

    def drain(self) -> list[RtpPacket]:
        """Release everything held, in order, skipping gaps (end of stream)."""
        ready: list[RtpPacket] = []
        while self._held:
            ready.extend(self._skip_gap())
        return ready

    def _release_contiguous(self) -> list[RtpPacket]:
        ready = []
        held = self._held
        nxt = self._next
        while nxt in held:
            ready.append(held.pop(nxt)[0])
            nxt = (nxt + 1) & 0xFFFF
        self._next = nxt
        self.stats.released += len(ready)
        return ready

    def _skip_gap(self) -> list[RtpPacket]:
        assert self._next is not None
        nxt = self._next
        first = min(self._held, key=lambda s: seq_diff(s, nxt))
        self.stats.lost += seq_diff(first, nxt)
        self._next = first
        return self._release_contiguous()
