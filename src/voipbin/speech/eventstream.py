"""AWS event stream framing (``application/vnd.amazon.eventstream``), used by Transcribe.

A message is: total length (u32 BE), headers length (u32 BE), CRC32 of those 8 bytes,
headers, payload, CRC32 of everything before. Decoding uses botocore's parser; botocore
has no encoder, so `encode_message` builds messages (string headers only, which is all
Transcribe streaming needs).
"""

import binascii
import struct

from botocore.eventstream import EventStreamBuffer, EventStreamMessage

_STRING = 7

__all__ = ["EventStreamBuffer", "EventStreamMessage", "encode_message"]


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One event stream message with string-valued `headers` and `payload`."""
    encoded = b"".join(
        struct.pack("B", len(name.encode())) + name.encode()
        + struct.pack(">BH", _STRING, len(value.encode())) + value.encode()
        for name, value in headers.items()
    )  # fmt: skip
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded))
    prelude += struct.pack(">I", binascii.crc32(prelude))
    body = prelude + encoded + payload
    return body + struct.pack(">I", binascii.crc32(body))
