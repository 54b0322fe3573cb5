"""RFC 4733 DTMF both ways on an RTP session: sending digits as telephone-events (§2.5.1) and
reporting received events once each (§2.5.2).

Durations are in RTP timestamp units of the negotiated telephone-event clock rate
(``clock_rate_hz``, from SDP ``a=rtpmap:<pt> telephone-event/<rate>``); we negotiate it at the
audio codec's rate (RFC 4733 §2.1), so an event shares the audio stream's timestamp space and
starts at the timestamp of the tick it begins on. Payload layout: :mod:`.codecs.telephone_event`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator

from .codecs.telephone_event import (
    END_PACKET_REPEATS,
    MAX_DURATION_SAMPLES,
    TELEPHONE_EVENT_CLOCK_RATE_HZ,
    DtmfDigit,
    TelephoneEvent,
    TelephoneEventError,
    event_for_digit,
)
from .latching import Address
from .pcm import FRAME_MS
from .rtp import RtpPacket
from .rtp_sender import RtpSender
from .rtp_stats import RtpStats

logger = logging.getLogger(__name__)

DEFAULT_DTMF_DURATION_MS = 100
DEFAULT_DTMF_PAUSE_MS = 60

#: per tick: (payload, marker, timestamp) of an event packet, or None for a tick of audio
_Packet = tuple[bytes, bool, int] | None


class DtmfSender:
    """Queues digits and sends them as RFC 4733 events, one packet per tick (audio is replaced
    while an event plays; the pause between digits carries audio).

    Each event: packets every 20 ms with a growing duration (the first one marked, §2.5.1.2),
    then the end packet three times (§2.5.1.4); all carry the event's start timestamp.
    """

    def __init__(self, stats: RtpStats, payload_type: int | None = None,
                 clock_rate_hz: int = TELEPHONE_EVENT_CLOCK_RATE_HZ) -> None:
        self.stats = stats
        #: the negotiated telephone-event payload type, or None (then nothing can be sent)
        self.payload_type = payload_type
        #: the negotiated telephone-event clock rate (Hz)
        self.clock_rate_hz = clock_rate_hz
        self.jobs: list[tuple[Iterator[_Packet], asyncio.Future[None]]] = []

    def send(self, sender: RtpSender, digits: str, duration_ms: int, pause_ms: int) -> asyncio.Future[None]:
        """Queue ``digits``; returns a future done when the last end packet was sent.

        Raises TelephoneEventError for a non-DTMF character, RuntimeError if no telephone-event
        payload type was negotiated.
        """
        if self.payload_type is None:
            raise RuntimeError("no telephone-event payload type negotiated")
        events = [event_for_digit(d) for d in digits]
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.jobs.append((self._packets(sender, events, duration_ms, pause_ms), future))
        return future

    def _packets(self, sender: RtpSender, events: list[int], duration_ms: int, pause_ms: int) -> Iterator[_Packet]:
        units_per_frame = self.clock_rate_hz * FRAME_MS // 1000
        target = duration_ms * self.clock_rate_hz // 1000
        for index, event in enumerate(events):
            start = sender.timestamp
            duration = 0
            marker = True
            while duration < target:
                duration = min(duration + units_per_frame, MAX_DURATION_SAMPLES)
                yield TelephoneEvent(event, end=False, duration=duration).serialize(), marker, start
                marker = False
            end_payload = TelephoneEvent(event, end=True, duration=duration).serialize()
            for _ in range(END_PACKET_REPEATS):
                yield end_payload, False, start
            self.stats.dtmf_sent += 1
            if index < len(events) - 1:
                for _ in range(max(0, pause_ms // FRAME_MS)):
                    yield None

    def tick(self, sender: RtpSender, transport: asyncio.DatagramTransport, remote: Address) -> bool:
        """Send this tick's event packet; False when this tick carries audio instead."""
        packets, future = self.jobs[0]
        item = next(packets, StopIteration)
        if item is StopIteration:
            self.jobs.pop(0)
            if not future.done():
                future.set_result(None)
            return False
        if item is None or self.payload_type is None:
            return False
        payload, marker, timestamp = item  # type: ignore[misc]
        sender.send_packet(transport, remote, self.payload_type, marker, timestamp, payload)
        return True

    def cancel(self) -> None:
        """Drop every queued digit; their futures are cancelled (the session closed)."""
        for _, future in self.jobs:
            if not future.done():
                future.cancel()
        self.jobs.clear()


class DtmfReceiver:
    """Reports each received event once (§2.5.2): on its first end packet, or, when every end
    packet was lost, when the next event starts. Retransmitted end packets are ignored."""

    def __init__(self, stats: RtpStats, payload_type: int | None = None,
                 clock_rate_hz: int = TELEPHONE_EVENT_CLOCK_RATE_HZ,
                 on_dtmf: Callable[[DtmfDigit], None] | None = None) -> None:
        self.stats = stats
        #: the negotiated telephone-event payload type, or None (such packets are then unknown)
        self.payload_type = payload_type
        #: the negotiated telephone-event clock rate (Hz): converts durations to milliseconds
        self.clock_rate_hz = clock_rate_hz
        #: called with a :class:`DtmfDigit` once per received event; must not block
        self.on_dtmf = on_dtmf
        self._current: tuple[int, TelephoneEvent] | None = None
        self._reported_timestamp: int | None = None

    def receive(self, packet: RtpPacket) -> None:
        """A telephone-event packet; a malformed payload is counted in ``packets_invalid``."""
        try:
            event = TelephoneEvent.parse(packet.payload)
        except TelephoneEventError:
            self.stats.packets_invalid += 1
            return
        timestamp = packet.timestamp
        if event.digit is None or timestamp == self._reported_timestamp:
            return
        current = self._current
        if current is not None and current[0] != timestamp:
            self._report(*current)  # its end packets were all lost
        if event.end:
            self._report(timestamp, event)
        else:
            self._current = (timestamp, event)

    def _report(self, timestamp: int, event: TelephoneEvent) -> None:
        self._current = None
        self._reported_timestamp = timestamp
        self.stats.dtmf_received += 1
        if self.on_dtmf is not None:
            duration_ms = event.duration * 1000 // self.clock_rate_hz
            digit = DtmfDigit(event.digit or "", duration_ms, event.volume, timestamp)
            try:
                self.on_dtmf(digit)
            except Exception:
                logger.exception("on_dtmf callback failed")
