"""The codec seam: every audio codec speaks PCM16 on one side and RTP payloads on the other.

Internal audio is PCM16 little-endian mono at the codec's clock rate, in 20 ms frames
(DESIGN.md "Audio"). A codec instance belongs to one RTP stream, so stateful codecs
(Opus, G.722 later) can keep their state on ``self``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from ..pcm import SAMPLE_RATE_HZ, SAMPLE_WIDTH_BYTES, SAMPLES_PER_FRAME


class Codec(ABC):
    """An audio codec for one RTP stream (RFC 3551 §4.5 audio encodings).

    Subclasses set :attr:`name` (the RFC 4566 ``a=rtpmap`` encoding name),
    :attr:`clock_rate_hz` and :attr:`SAMPLES_PER_FRAME`.
    """

    name: str = ""
    clock_rate_hz: int = SAMPLE_RATE_HZ
    channels: int = 1
    #: samples in one 20 ms frame at :attr:`clock_rate_hz`
    SAMPLES_PER_FRAME: int = SAMPLES_PER_FRAME
    #: the payload type used when the peer does not say otherwise (RFC 3551 table 4), or None
    STATIC_PAYLOAD_TYPE: int | None = None
    #: True when each sample is coded on its own (G.711): a long buffer may be encoded once
    #: and cut into frames of ``SAMPLES_PER_FRAME * BYTES_PER_SAMPLE`` bytes
    SAMPLE_WISE: bool = False
    BYTES_PER_SAMPLE: int = 0

    def __init__(self, payload_type: int | None = None) -> None:
        pt = self.STATIC_PAYLOAD_TYPE if payload_type is None else payload_type
        if pt is None or not 0 <= pt <= 127:
            raise ValueError(f"{type(self).__name__}: payload type must be 0..127, got {pt!r}")
        self.payload_type: int = pt

    @property
    def clock_rate(self) -> int:
        """RTP clock rate in Hz (alias of :attr:`clock_rate_hz`)."""
        return self.clock_rate_hz

    @property
    def frame_bytes(self) -> int:
        """Size in bytes of one 20 ms PCM16 frame at this codec's clock rate."""
        return self.SAMPLES_PER_FRAME * SAMPLE_WIDTH_BYTES

    @abstractmethod
    def encode(self, pcm16: bytes) -> bytes:
        """Encode PCM16 LE mono (any whole number of samples) into one RTP payload."""

    @abstractmethod
    def decode(self, payload: bytes) -> bytes:
        """Decode one RTP payload into PCM16 LE mono at :attr:`clock_rate_hz`."""

    def silence_payload(self) -> bytes:
        """The payload of one 20 ms frame of digital silence."""
        return self.encode(bytes(self.frame_bytes))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(payload_type={self.payload_type})"
