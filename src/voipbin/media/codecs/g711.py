"""G.711 PCMU (mu-law) and PCMA (A-law), RFC 3551 §4.5.14, ITU-T G.711.

Encoding and decoding are numpy table look-ups: one 65536-entry table per law for
PCM16 -> 8 bit, one 256-entry table for 8 bit -> PCM16. The tables are built once at
import with the classic Sun / CPython ``audioop`` algorithms, so results are bit-exact
with ``audioop.lin2ulaw`` / ``lin2alaw`` / ``ulaw2lin`` / ``alaw2lin``.
"""

from __future__ import annotations

import numpy as np

from ..pcm import FRAME_BYTES, SAMPLE_RATE_HZ, SAMPLES_PER_FRAME
from .base import Codec

PCMU_PAYLOAD_TYPE = 0
PCMA_PAYLOAD_TYPE = 8

_ULAW_BIAS = 0x84
_ULAW_CLIP_14BIT = 8159
_ULAW_SEGMENT_ENDS = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
_ALAW_SEGMENT_ENDS = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])


def _all_pcm16_by_uint16_index() -> np.ndarray:
    """Every int16 value, placed at the index of its uint16 bit pattern."""
    return np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32)


def _build_ulaw_encode_table() -> np.ndarray:
    pcm = _all_pcm16_by_uint16_index() >> 2  # 14-bit
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(pcm), _ULAW_CLIP_14BIT) + (_ULAW_BIAS >> 2)
    segment = np.searchsorted(_ULAW_SEGMENT_ENDS, magnitude, side="left")
    mantissa = (magnitude >> (segment + 1)) & 0x0F
    code = np.where(segment >= 8, 0x7F, (segment << 4) | mantissa)
    return (code ^ mask).astype(np.uint8)


def _build_ulaw_decode_table() -> np.ndarray:
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((code & 0x0F) << 3) + _ULAW_BIAS) << ((code & 0x70) >> 4)
    return np.where(code & 0x80, _ULAW_BIAS - t, t - _ULAW_BIAS).astype("<i2")


def _build_alaw_encode_table() -> np.ndarray:
    pcm = _all_pcm16_by_uint16_index() >> 3  # 13-bit
    mask = np.where(pcm >= 0, 0xD5, 0x55)
    magnitude = np.where(pcm >= 0, pcm, -pcm - 1)
    segment = np.searchsorted(_ALAW_SEGMENT_ENDS, magnitude, side="left")
    shift = np.where(segment < 2, 1, segment)
    code = (np.minimum(segment, 7) << 4) | ((magnitude >> shift) & 0x0F)
    code = np.where(segment >= 8, 0x7F, code)
    return (code ^ mask).astype(np.uint8)


def _build_alaw_decode_table() -> np.ndarray:
    code = np.arange(256, dtype=np.int32) ^ 0x55
    t = (code & 0x0F) << 4
    segment = (code & 0x70) >> 4
    t = np.where(segment == 0, t + 8, t + 0x108)
    t = np.where(segment > 1, t << np.maximum(segment - 1, 0), t)
    return np.where(code & 0x80, t, -t).astype("<i2")


ULAW_ENCODE_TABLE = _build_ulaw_encode_table()
ULAW_DECODE_TABLE = _build_ulaw_decode_table()
ALAW_ENCODE_TABLE = _build_alaw_encode_table()
ALAW_DECODE_TABLE = _build_alaw_decode_table()


class _G711Codec(Codec):
    clock_rate_hz = SAMPLE_RATE_HZ
    SAMPLES_PER_FRAME = SAMPLES_PER_FRAME
    SAMPLE_WISE = True
    BYTES_PER_SAMPLE = 1
    _encode_table: np.ndarray
    _decode_table: np.ndarray

    def __init__(self, payload_type: int | None = None) -> None:
        super().__init__(payload_type)
        self._silence = self.encode(bytes(FRAME_BYTES))

    def encode(self, pcm16: bytes) -> bytes:
        """PCM16 LE mono, 8000 Hz (even byte count) -> one byte per sample."""
        return self._encode_table[np.frombuffer(pcm16, dtype="<u2")].tobytes()

    def decode(self, payload: bytes) -> bytes:
        """One byte per sample -> PCM16 LE mono, 8000 Hz (two bytes per sample)."""
        return self._decode_table[np.frombuffer(payload, dtype=np.uint8)].tobytes()

    def encode_array(self, samples: np.ndarray) -> np.ndarray:
        """int16 samples (any shape) -> uint8 codes of the same shape (for pre-encoding)."""
        return self._encode_table[samples.astype(np.int16, copy=False).view(np.uint16)]

    def silence_payload(self) -> bytes:
        """160 bytes: 20 ms of silence."""
        return self._silence


class PcmuCodec(_G711Codec):
    """G.711 mu-law, static payload type 0 (RFC 3551 table 4)."""

    name = "PCMU"
    STATIC_PAYLOAD_TYPE = PCMU_PAYLOAD_TYPE
    _encode_table = ULAW_ENCODE_TABLE
    _decode_table = ULAW_DECODE_TABLE


class PcmaCodec(_G711Codec):
    """G.711 A-law, static payload type 8 (RFC 3551 table 4)."""

    name = "PCMA"
    STATIC_PAYLOAD_TYPE = PCMA_PAYLOAD_TYPE
    _encode_table = ALAW_ENCODE_TABLE
    _decode_table = ALAW_DECODE_TABLE
