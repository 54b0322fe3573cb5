"""RTP packets, RFC 3550 §5.1 (fixed header), §5.3.1 (header extension), padding.

::

     0                   1                   2                   3
    |V=2|P|X|  CC   |M|     PT      |       sequence number         |
    |                           timestamp                           |
    |           synchronization source (SSRC) identifier            |
    |            contributing source (CSRC) identifiers (CC x 32)   |
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

RTP_VERSION = 2
RTP_HEADER_SIZE_BYTES = 12
SEQUENCE_MODULO = 1 << 16
TIMESTAMP_MODULO = 1 << 32
MAX_CSRC_COUNT = 15

#: the 12-byte fixed header: first octet (V, P, X, CC), second (M, PT), sequence, timestamp, SSRC
FIXED_HEADER = struct.Struct("!BBHII")
_EXTENSION_HEADER = struct.Struct("!HH")


class RtpParseError(ValueError):
    """A datagram that is not a well-formed RTP version 2 packet."""


def seq_diff(a: int, b: int) -> int:
    """Signed distance ``a - b`` between two 16-bit sequence numbers, in -32768..32767."""
    return ((a - b + 0x8000) & 0xFFFF) - 0x8000


@dataclass(slots=True)
class RtpPacket:
    """One RTP packet (RFC 3550 §5.1).

    payload excludes padding; ``padding_size`` is the number of padding octets
    (0 = no P bit). ``extension_profile`` is None when there is no header extension;
    ``extension_data`` is a multiple of 4 bytes (§5.3.1).
    """

    payload_type: int = 0
    sequence_number: int = 0
    timestamp: int = 0
    ssrc: int = 0
    payload: bytes = b""
    marker: bool = False
    csrc: list[int] = field(default_factory=list)
    extension_profile: int | None = None
    extension_data: bytes = b""
    padding_size: int = 0

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """Parse one datagram. Raises RtpParseError (never anything else) if it is malformed."""
        size = len(data)
        if size < RTP_HEADER_SIZE_BYTES:
            raise RtpParseError(f"RTP packet too short: {size} bytes")
        first, second, seq, timestamp, ssrc = FIXED_HEADER.unpack_from(data)
        if first >> 6 != RTP_VERSION:
            raise RtpParseError(f"RTP version must be 2, got {first >> 6}")
        offset = RTP_HEADER_SIZE_BYTES
        csrc_count = first & 0x0F
        csrc: list[int] = []
        if csrc_count:
            end = offset + 4 * csrc_count
            if end > size:
                raise RtpParseError("RTP packet truncated in CSRC list")
            csrc = list(struct.unpack_from(f"!{csrc_count}I", data, offset))
            offset = end
        extension_profile = None
        extension_data = b""
        if first & 0x10:
            if offset + 4 > size:
                raise RtpParseError("RTP packet truncated in header extension")
            extension_profile, words = _EXTENSION_HEADER.unpack_from(data, offset)
            offset += 4
            end = offset + 4 * words
            if end > size:
                raise RtpParseError("RTP header extension longer than packet")
            extension_data = data[offset:end]
            offset = end
        payload_end = size
        padding_size = 0
        if first & 0x20:
            padding_size = data[-1]
            if padding_size == 0 or offset + padding_size > size:
                raise RtpParseError(f"bad RTP padding count {padding_size}")
            payload_end = size - padding_size
        return cls(
            payload_type=second & 0x7F,
            sequence_number=seq,
            timestamp=timestamp,
            ssrc=ssrc,
            payload=bytes(data[offset:payload_end]),
            marker=bool(second & 0x80),
            csrc=csrc,
            extension_profile=extension_profile,
            extension_data=bytes(extension_data),
            padding_size=padding_size,
        )

    def serialize(self) -> bytes:
        """The packet as bytes. Raises ValueError if a field is out of range."""
        if len(self.csrc) > MAX_CSRC_COUNT:
            raise ValueError(f"at most {MAX_CSRC_COUNT} CSRCs, got {len(self.csrc)}")
        if len(self.extension_data) % 4:
            raise ValueError("RTP header extension data must be a multiple of 4 bytes")
        if not 0 <= self.padding_size <= 255:
            raise ValueError(f"padding size must be 0..255, got {self.padding_size}")
        first = (RTP_VERSION << 6) | len(self.csrc)
        if self.padding_size:
            first |= 0x20
        if self.extension_profile is not None:
            first |= 0x10
        parts = [
            FIXED_HEADER.pack(
                first,
                (0x80 if self.marker else 0) | self.payload_type,
                self.sequence_number,
                self.timestamp,
                self.ssrc,
            )
        ]
        if self.csrc:
            parts.append(struct.pack(f"!{len(self.csrc)}I", *self.csrc))
        if self.extension_profile is not None:
            parts.append(_EXTENSION_HEADER.pack(self.extension_profile, len(self.extension_data) // 4))
            parts.append(self.extension_data)
        parts.append(self.payload)
        if self.padding_size:
            parts.append(bytes(self.padding_size - 1) + bytes([self.padding_size]))
        return b"".join(parts)


def pack_header(payload_type: int, marker: bool, sequence_number: int, timestamp: int, ssrc: int) -> bytes:
    """A 12-byte fixed header with no CSRC, extension or padding (the send hot path)."""
    return FIXED_HEADER.pack(0x80, (0x80 if marker else 0) | payload_type, sequence_number, timestamp, ssrc)
