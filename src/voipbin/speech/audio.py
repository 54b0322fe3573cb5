"""PCM16 helpers shared by the speech engines.

Every buffer here is signed 16-bit little-endian mono PCM ("PCM16"). A frame is
`FRAME_MS` (20 ms) of audio: 320 samples (640 bytes) at 16000 Hz, 160 samples at 8000 Hz.
Codecs (G.711 and friends) belong to `voipbin.media`, not here.
"""

from collections.abc import AsyncIterable, AsyncIterator

import numpy as np
import soxr

FRAME_MS = 20
SAMPLE_WIDTH_BYTES = 2
STT_SAMPLE_RATE = 16000
"""Rate every recognizer works at internally (Hz)."""


def samples_per_frame(sample_rate: int) -> int:
    """Samples in one 20 ms frame at `sample_rate` Hz (16000 -> 320)."""
    return sample_rate * FRAME_MS // 1000


def bytes_per_frame(sample_rate: int) -> int:
    """Bytes in one 20 ms PCM16 frame at `sample_rate` Hz (16000 -> 640)."""
    return samples_per_frame(sample_rate) * SAMPLE_WIDTH_BYTES


def duration_s(pcm: bytes, sample_rate: int) -> float:
    """Duration in seconds of PCM16 mono `pcm` at `sample_rate` Hz."""
    return len(pcm) / SAMPLE_WIDTH_BYTES / sample_rate


def pcm16_to_float(pcm: bytes) -> np.ndarray:
    """PCM16 bytes -> float32 samples in [-1, 1)."""
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


def float_to_pcm16(samples: np.ndarray) -> bytes:
    """Float samples (clipped to [-1, 1]) -> PCM16 bytes."""
    clipped = np.clip(samples, -1.0, 1.0)
    return (clipped * 32767.0).astype("<i2").tobytes()


def resample(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    """Resample a whole PCM16 buffer with soxr (high quality). Returns PCM16 bytes."""
    if from_rate == to_rate or not pcm:
        return pcm
    samples = np.frombuffer(pcm, dtype="<i2")
    out = soxr.resample(samples, from_rate, to_rate, quality="HQ")
    return np.asarray(out, dtype="<i2").tobytes()


class StreamResampler:
    """Chunk-by-chunk resampler keeping filter state across chunks (soxr.ResampleStream).

    `process(chunk)` accepts any number of PCM16 bytes (an odd trailing byte is kept for
    the next call) and returns the resampled PCM16 available so far; `flush()` returns
    the tail held in the filter at end of stream.
    """

    def __init__(self, from_rate: int, to_rate: int) -> None:
        self.from_rate = from_rate
        self.to_rate = to_rate
        self._passthrough = from_rate == to_rate
        self._stream = (
            None
            if self._passthrough
            else soxr.ResampleStream(from_rate, to_rate, 1, dtype="int16", quality="HQ")
        )
        self._odd = b""

    def process(self, chunk: bytes) -> bytes:
        data = self._odd + chunk
        usable = len(data) - len(data) % SAMPLE_WIDTH_BYTES
        self._odd = data[usable:]
        if self._stream is None:
            return data[:usable]
        samples = np.frombuffer(data[:usable], dtype="<i2")
        return self._stream.resample_chunk(samples, last=False).astype("<i2").tobytes()

    def flush(self) -> bytes:
        if self._stream is None:
            return b""
        empty = np.zeros(0, dtype="<i2")
        return self._stream.resample_chunk(empty, last=True).astype("<i2").tobytes()


async def resample_chunks(
    chunks: AsyncIterable[bytes], from_rate: int, to_rate: int
) -> AsyncIterator[bytes]:
    """Resample an async stream of PCM16 chunks (e.g. a synthesizer's output).

    Chunks are yielded as they come (nothing waits for the end of the stream); closing
    this iterator closes the source too, so cancelling playback cancels synthesis.
    """
    resampler = StreamResampler(from_rate, to_rate)
    source = aiter(chunks)
    try:
        async for chunk in source:
            out = resampler.process(chunk)
            if out:
                yield out
        tail = resampler.flush()
        if tail:
            yield tail
    finally:
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            await aclose()


def split_frames(pcm: bytes, sample_rate: int) -> list[bytes]:
    """Split PCM16 into 20 ms frames; the last one is zero-padded to full length."""
    size = bytes_per_frame(sample_rate)
    frames = [pcm[i : i + size] for i in range(0, len(pcm), size)]
    if frames and len(frames[-1]) < size:
        frames[-1] = frames[-1] + b"\x00" * (size - len(frames[-1]))
    return frames
