"""RFC 4733 telephone-event payloads (DTMF named events, §3.2 and §2.3).

Payload layout (RFC 4733 §2.3, 4 bytes)::

     0                   1                   2                   3
    |     event     |E|R| volume    |          duration             |

``volume`` is the power level in -dBm0 (0..63, larger is quieter); ``duration`` is in
RTP timestamp units (samples at the stream's clock rate, 8000 Hz for telephone-event/8000).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

TELEPHONE_EVENT_ENCODING = "telephone-event"
DEFAULT_TELEPHONE_EVENT_PAYLOAD_TYPE = 101
TELEPHONE_EVENT_CLOCK_RATE_HZ = 8000
PAYLOAD_SIZE_BYTES = 4
DEFAULT_VOLUME_DBM0 = 10  # i.e. -10 dBm0
MAX_DURATION_SAMPLES = 0xFFFF
#: RFC 4733 §2.5.1.4: the final packet of an event is sent three times
END_PACKET_REPEATS = 3

#: RFC 4733 §3.2 table 7: DTMF named events 0-15
DTMF_EVENTS = "0123456789*#ABCD"
_EVENT_BY_DIGIT = {digit: code for code, digit in enumerate(DTMF_EVENTS)}
_STRUCT = struct.Struct("!BBH")


class TelephoneEventError(ValueError):
    """A telephone-event payload or digit that cannot be represented."""


def event_for_digit(digit: str) -> int:
    """RFC 4733 event code for a DTMF digit (``0-9 * # A-D``, case-insensitive).

    Raises TelephoneEventError for anything else.
    """
    try:
        return _EVENT_BY_DIGIT[digit.upper()]
    except KeyError:
        raise TelephoneEventError(f"not a DTMF digit: {digit!r}") from None


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """One RFC 4733 event report.

    event: event code 0..255 (0-15 are DTMF, see :data:`DTMF_EVENTS`).
    end: the E bit, set on the final packet(s) of the event.
    volume: 0..63, power in -dBm0.
    duration: event duration so far, in RTP timestamp units (0..65535).
    """

    event: int
    end: bool = False
    volume: int = DEFAULT_VOLUME_DBM0
    duration: int = 0

    @property
    def digit(self) -> str | None:
        """The DTMF digit for events 0-15, else None."""
        return DTMF_EVENTS[self.event] if self.event < len(DTMF_EVENTS) else None

    def serialize(self) -> bytes:
        """The 4-byte payload (RFC 4733 §2.3). Raises TelephoneEventError if a field is out of range."""
        if not 0 <= self.event <= 255:
            raise TelephoneEventError(f"event out of range: {self.event}")
        if not 0 <= self.volume <= 63:
            raise TelephoneEventError(f"volume out of range: {self.volume}")
        if not 0 <= self.duration <= MAX_DURATION_SAMPLES:
            raise TelephoneEventError(f"duration out of range: {self.duration}")
        return _STRUCT.pack(self.event, (0x80 if self.end else 0) | self.volume, self.duration)

    @classmethod
    def parse(cls, payload: bytes) -> TelephoneEvent:
        """Parse a payload; only its first event is read (RFC 4733 §2.5.1.5 allows several).

        Raises TelephoneEventError if shorter than 4 bytes. The R bit is ignored (§2.3.3).
        """
        if len(payload) < PAYLOAD_SIZE_BYTES:
            raise TelephoneEventError(f"telephone-event payload too short: {len(payload)} bytes")
        event, flags, duration = _STRUCT.unpack_from(payload)
        return cls(event=event, end=bool(flags & 0x80), volume=flags & 0x3F, duration=duration)


@dataclass(frozen=True, slots=True)
class DtmfDigit:
    """A received DTMF digit, delivered once per event.

    digit: ``0-9 * # A-D``; duration_ms: as reported by the sender (0 if the end was lost);
    volume: -dBm0; timestamp: RTP timestamp of the event start.
    """

    digit: str
    duration_ms: int
    volume: int
    timestamp: int
