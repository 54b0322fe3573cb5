"""The PCM16 helpers the speech engines use, and the rate every recognizer works at.

The basics (frame sizes, conversions, soxr resampling) are declared once in
:mod:`voipbin.media.pcm` and re-exported here for speech code; only what is speech's own
lives in this module. Codecs (G.711 and friends) belong to `voipbin.media`, not here.
"""

from voipbin.media.pcm import (
    FRAME_MS,
    SAMPLE_WIDTH_BYTES,
    StreamResampler,
    bytes_per_frame,
    duration_s,
    float_to_pcm16,
    pcm16_to_float,
    resample,
    resample_chunks,
    samples_per_frame,
    split_frames,
)

STT_SAMPLE_RATE = 16000
"""Rate every recognizer works at internally (Hz)."""

__all__ = [
    "FRAME_MS",
    "SAMPLE_WIDTH_BYTES",
    "STT_SAMPLE_RATE",
    "StreamResampler",
    "bytes_per_frame",
    "duration_s",
    "float_to_pcm16",
    "pcm16_to_float",
    "resample",
    "resample_chunks",
    "samples_per_frame",
    "split_frames",
]
