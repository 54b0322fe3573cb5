"""PCM16 basics, declared once: rates, 20 ms frame sizes, conversions, resampling, mixing.

Every buffer here is signed 16-bit little-endian mono PCM ("PCM16", DESIGN.md "Audio"). A
frame is :data:`FRAME_MS` (20 ms) of audio: 160 samples (320 bytes) at 8000 Hz, the G.711
rate every RTP leg runs at (:data:`SAMPLE_RATE_HZ`); 320 samples (640 bytes) at 16000 Hz.

Resampling is soxr (libsoxr, "HQ" quality) behind one wrapper: :func:`resample_pcm16` for a
whole int16 array, :func:`resample` for whole PCM16 bytes, :class:`StreamResampler` for a
stream of chunks (TTS output, STT input) that keeps the filter state between chunks.

Imports nothing of voipbin: codecs, players, the RTP session and ``voipbin.speech`` build on it.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

import numpy as np
import soxr

#: 20 ms frames everywhere (RTP ptime, mixer ticks, STT feed)
FRAME_MS = 20
#: PCM16: two bytes a sample
SAMPLE_WIDTH_BYTES = 2
#: the media (G.711, telephone-event/8000) sample rate, in Hz
SAMPLE_RATE_HZ = 8000
#: samples in one 20 ms frame at :data:`SAMPLE_RATE_HZ`
SAMPLES_PER_FRAME = SAMPLE_RATE_HZ * FRAME_MS // 1000
#: bytes in one 20 ms PCM16 frame at :data:`SAMPLE_RATE_HZ`
FRAME_BYTES = SAMPLE_WIDTH_BYTES * SAMPLES_PER_FRAME
#: soxr quality used for every resampling
RESAMPLE_QUALITY = "HQ"


def samples_per_frame(sample_rate: int) -> int:
    """Samples in one 20 ms frame at ``sample_rate`` Hz (8000 -> 160, 16000 -> 320)."""
    return sample_rate * FRAME_MS // 1000


def bytes_per_frame(sample_rate: int) -> int:
    """Bytes in one 20 ms PCM16 frame at ``sample_rate`` Hz (8000 -> 320, 16000 -> 640)."""
    return samples_per_frame(sample_rate) * SAMPLE_WIDTH_BYTES


def duration_s(pcm: bytes, sample_rate: int) -> float:
    """Duration in seconds of PCM16 mono ``pcm`` at ``sample_rate`` Hz."""
    return len(pcm) / SAMPLE_WIDTH_BYTES / sample_rate


def pcm16_to_float(pcm: bytes) -> np.ndarray:
    """PCM16 bytes -> float32 samples in [-1, 1)."""
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


def float_to_pcm16(samples: np.ndarray) -> bytes:
    """Float samples (clipped to [-1, 1]) -> PCM16 bytes."""
    clipped = np.clip(samples, -1.0, 1.0)
    return (clipped * 32767.0).astype("<i2").tobytes()


def split_frames(pcm: bytes, sample_rate: int) -> list[bytes]:
    """Split PCM16 into 20 ms frames; the last one is zero-padded to full length."""
    size = bytes_per_frame(sample_rate)
    frames = [pcm[i : i + size] for i in range(0, len(pcm), size)]
    if frames and len(frames[-1]) < size:
        frames[-1] = frames[-1] + b"\x00" * (size - len(frames[-1]))
    return frames


def mix_frames(frames: list[bytes]) -> bytes:
    """Sum equal-length PCM16 LE frames with saturation at the int16 limits."""
    total = np.frombuffer(frames[0], dtype="<i2").astype(np.int32)
    for frame in frames[1:]:
        total += np.frombuffer(frame, dtype="<i2")
    np.clip(total, -32768, 32767, out=total)
    return total.astype("<i2").tobytes()


# ---------------------------------------------------------------- resampling (soxr)


def resample_pcm16(samples: np.ndarray, input_rate_hz: int, output_rate_hz: int) -> np.ndarray:
    """Resample int16 mono samples with soxr; returns int16 (the input itself when rates match)."""
    if input_rate_hz == output_rate_hz:
        return samples
    return soxr.resample(samples, input_rate_hz, output_rate_hz, quality=RESAMPLE_QUALITY)


def resample(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    """Resample a whole PCM16 buffer (see :func:`resample_pcm16`). Returns PCM16 bytes."""
    if from_rate == to_rate or not pcm:
        return pcm
    out = resample_pcm16(np.frombuffer(pcm, dtype="<i2"), from_rate, to_rate)
    return np.asarray(out, dtype="<i2").tobytes()


class StreamResampler:
    """Chunk-by-chunk resampler keeping filter state across chunks (soxr.ResampleStream).

    ``process(chunk)`` accepts any number of PCM16 bytes (an odd trailing byte is kept for
    the next call) and returns the resampled PCM16 available so far; ``flush()`` returns
    the tail held in the filter (soxr keeps ~100 ms) at end of stream. Same rates: a
    pass-through.
    """

    def __init__(self, from_rate: int, to_rate: int) -> None:
        self.from_rate = from_rate
        self.to_rate = to_rate
        self._stream = (
            None
            if from_rate == to_rate
            else soxr.ResampleStream(from_rate, to_rate, 1, dtype="int16", quality=RESAMPLE_QUALITY)
        )
        self._odd = b""

    def process(self, chunk: bytes) -> bytes:
        data = self._odd + chunk if self._odd else chunk
        usable = len(data) - len(data) % SAMPLE_WIDTH_BYTES
        self._odd = data[usable:]
        if self._stream is None:
            return data[:usable] if usable != len(data) else data
        samples = np.frombuffer(data, dtype="<i2", count=usable // SAMPLE_WIDTH_BYTES)
        return self._stream.resample_chunk(samples, last=False).astype("<i2", copy=False).tobytes()

    def flush(self) -> bytes:
        if self._stream is None:
            return b""
        empty = np.zeros(0, dtype="<i2")
        return self._stream.resample_chunk(empty, last=True).astype("<i2", copy=False).tobytes()


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
