"""The counters of one RTP session, shared by its sender, receiver and DTMF parts."""

from __future__ import annotations

from dataclasses import dataclass


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
