"""Outbound audio players: silence, a PCM buffer / WAV file, and a streaming player for TTS.

All produce PCM16 LE mono 20 ms frames at ``output_rate_hz`` (8000 Hz: 160 samples,
320 bytes). Input at another rate is resampled with soxr (:mod:`voipbin.media.pcm`).
"""

from __future__ import annotations

import asyncio
import wave
import weakref
from collections.abc import AsyncIterable
from os import PathLike

import numpy as np

from .codecs import Codec
from .pcm import (
    FRAME_BYTES,
    FRAME_MS,
    SAMPLE_RATE_HZ,
    SAMPLE_WIDTH_BYTES,
    StreamResampler,
    resample_pcm16,
    samples_per_frame,
)
from .sources import AudioSource

__all__ = ["BufferPlayer", "SilenceSource", "StreamPlayer", "read_wav"]


class _EncodedFrames(list[bytes]):
    """One buffer's payloads for one codec, frame by frame (a list that can be weakly referenced)."""


#: (codec name, payload type, PCM bytes) -> its encoded frames, shared by every player of the same audio
#: (a prompt or music on hold played to many calls: one copy, and the tick reads memory already in cache);
#: an entry lives as long as a player uses it
_encoded_cache: weakref.WeakValueDictionary[tuple[str, int, bytes], _EncodedFrames] = weakref.WeakValueDictionary()


def _encoded_frames(codec: Codec, pcm: bytes, frame_samples: int) -> _EncodedFrames:
    """``pcm`` encoded with a sample-wise ``codec`` and cut into payloads of ``frame_samples`` samples."""
    key = (codec.name, codec.payload_type, pcm)
    frames = _encoded_cache.get(key)
    if frames is None:
        encoded = codec.encode(pcm)
        size = frame_samples * codec.BYTES_PER_SAMPLE
        frames = _encoded_cache[key] = _EncodedFrames(encoded[i : i + size] for i in range(0, len(encoded), size))
    return frames


def read_wav(path: str | PathLike[str]) -> tuple[np.ndarray, int]:
    """Read a PCM WAV file (8/16/32-bit integer, any channel count) as int16 mono.

    Returns (samples, sample_rate_hz). Raises wave.Error / ValueError for other formats.
    """
    with wave.open(str(path), "rb") as wav:
        width, channels, rate = wav.getsampwidth(), wav.getnchannels(), wav.getframerate()
        raw = wav.readframes(wav.getnframes())
    if width == 1:
        samples = (np.frombuffer(raw, dtype=np.uint8).astype(np.int16) - 128) << 8
    elif width == 2:
        samples = np.frombuffer(raw, dtype="<i2")
    elif width == 4:
        samples = (np.frombuffer(raw, dtype="<i4") >> 16).astype(np.int16)
    else:
        raise ValueError(f"unsupported WAV sample width {width} bytes in {path}")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1).astype(np.int16)
    return samples, rate


class SilenceSource(AudioSource):
    """Explicit digital silence forever (sends silence packets even with silence suppression)."""

    def __init__(self, frame_bytes: int = FRAME_BYTES) -> None:
        self._frame = bytes(frame_bytes)

    def read_frame(self) -> bytes:
        return self._frame


class BufferPlayer(AudioSource):
    """Plays a PCM16 buffer once (or looped), then finishes.

    pcm: PCM16 LE mono bytes or an int16 array at ``sample_rate_hz``; resampled once to
    ``output_rate_hz``. The last frame is zero-padded. For sample-wise codecs (G.711) the
    whole buffer is encoded once per codec and cut into payloads, shared by the players of the same
    audio, so sending a frame is a list index.
    """

    # read_payload's fields first: one or two cache lines per packet
    __slots__ = ("_payload_codec", "_position", "_last_index", "_payload_frames", "finished", "_done", "_frames",
                 "_loop_forever", "_samples", "_pcm", "_frame_bytes", "_samples_per_frame", "_encoded", "__weakref__")

    def __init__(
        self,
        pcm: bytes | np.ndarray,
        sample_rate_hz: int = SAMPLE_RATE_HZ,
        *,
        loop: bool = False,
        output_rate_hz: int = SAMPLE_RATE_HZ,
    ) -> None:
        self.finished = False
        self._done = None
        samples = np.frombuffer(pcm, dtype="<i2") if isinstance(pcm, (bytes, bytearray, memoryview)) else pcm
        samples = resample_pcm16(samples.astype(np.int16, copy=False), sample_rate_hz, output_rate_hz)
        frame_samples = samples_per_frame(output_rate_hz)
        frames = max(1, -(-len(samples) // frame_samples))
        padded = np.zeros(frames * frame_samples, dtype="<i2")
        padded[: len(samples)] = samples
        self._samples = padded
        self._pcm = padded.tobytes()
        self._frame_bytes = SAMPLE_WIDTH_BYTES * frame_samples
        self._samples_per_frame = frame_samples
        self._frames = frames
        self._last_index = frames - 1  # read_payload's hot path serves the frames before this one
        self._position = 0
        self._loop_forever = loop
        self._encoded: dict[tuple[str, int], _EncodedFrames] = {}
        self._payload_codec: Codec | None = None  # the codec of the last read_payload, and its frames
        self._payload_frames: list[bytes] = []  # one of self._encoded's values

    @classmethod
    def from_wav(cls, path: str | PathLike[str], *, loop: bool = False, output_rate_hz: int = SAMPLE_RATE_HZ) -> BufferPlayer:
        """A player for a WAV file (see :func:`read_wav`). Raises OSError / wave.Error."""
        samples, rate = read_wav(path)
        return cls(samples, rate, loop=loop, output_rate_hz=output_rate_hz)

    @property
    def duration_s(self) -> float:
        return self._frames * FRAME_MS / 1000

    def _advance(self) -> int | None:
        if self.finished:
            return None
        if self._position >= self._frames:
            if not self._loop_forever:
                self._finish()
                return None
            self._position = 0
        index = self._position
        self._position += 1
        if self._position >= self._frames and not self._loop_forever:
            self._finish()
        return index

    def read_frame(self) -> bytes | None:
        index = self._advance()
        if index is None:
            return None
        start = index * self._frame_bytes
        return self._pcm[start : start + self._frame_bytes]

    def read_payload(self, codec: Codec) -> bytes | None:
        """The next frame encoded with ``codec``. A sample-wise codec's (G.711) frames are encoded once,
        on first use, and kept per (codec name, payload type), shared with every player of the same audio:
        a tick then costs a list index."""
        if codec is self._payload_codec:
            index = self._position
            if index < self._last_index:  # the hot path: any frame but the last, player not finished
                self._position = index + 1
                return self._payload_frames[index]
        elif not codec.SAMPLE_WISE:
            return super().read_payload(codec)
        else:
            key = (codec.name, codec.payload_type)
            frames = self._encoded.get(key)
            if frames is None:
                frames = self._encoded[key] = _encoded_frames(codec, self._pcm, self._samples_per_frame)
            self._payload_codec, self._payload_frames = codec, frames
        index = self._advance()
        return None if index is None else self._payload_frames[index]

    def flush(self) -> None:
        """Stop playing (finishes the player)."""
        self._last_index = 0  # off read_payload's hot path
        self._finish()

    stop = flush


class StreamPlayer(AudioSource):
    """Plays PCM16 chunks fed as they are produced (TTS), at any input sample rate.

    Chunks are resampled with a soxr stream to ``output_rate_hz`` and cut into 20 ms frames.
    When the producer is slower than real time the player returns None (silence) until a
    whole frame is ready. :meth:`flush` drops everything, including the partial frame and
    the resampler's state, and cancels producers started with :meth:`play`; the player stays
    usable. :meth:`end` marks the end of input: the tail is padded and the player finishes
    once played out.
    """

    def __init__(
        self,
        input_rate_hz: int = SAMPLE_RATE_HZ,
        *,
        output_rate_hz: int = SAMPLE_RATE_HZ,
        max_buffer_s: float | None = None,
    ) -> None:
        self.input_rate_hz = input_rate_hz
        self.output_rate_hz = output_rate_hz
        self._frame_bytes = SAMPLE_WIDTH_BYTES * samples_per_frame(output_rate_hz)
        self._buffer = bytearray()
        self._resampler = self._new_resampler()
        self._ended = False
        self._max_buffer_bytes = None if max_buffer_s is None else int(max_buffer_s * output_rate_hz) * SAMPLE_WIDTH_BYTES
        self._tasks: set[asyncio.Task[None]] = set()
        self._drained: asyncio.Event | None = None
        self.frames_played = 0
        self.flushes = 0

    def _new_resampler(self) -> StreamResampler:
        return StreamResampler(self.input_rate_hz, self.output_rate_hz)

    @property
    def buffered_s(self) -> float:
        """Seconds of audio waiting to be sent."""
        return len(self._buffer) / (SAMPLE_WIDTH_BYTES * self.output_rate_hz)

    def feed(self, pcm16: bytes) -> None:
        """Queue PCM16 LE mono at ``input_rate_hz``. Raises RuntimeError after :meth:`end`."""
        if self._ended:
            raise RuntimeError("StreamPlayer.feed() after end()")
        if len(pcm16) % SAMPLE_WIDTH_BYTES:
            pcm16 = pcm16[:-1]  # a stray byte is dropped, never carried into the next chunk
        self._buffer += self._resampler.process(pcm16)
        if self._max_buffer_bytes is not None and len(self._buffer) > self._max_buffer_bytes:
            del self._buffer[: len(self._buffer) - self._max_buffer_bytes]
        if self._drained is not None:
            self._drained.clear()

    def end_utterance(self) -> None:
        """Push the resampler's held-back tail (soxr keeps ~100 ms) into the frame buffer, pad it to a
        whole frame (the utterance's last samples play now, not with the next one; :meth:`wait_drained`
        can complete) and start a fresh resampler, without ending the player: call after each utterance."""
        self._buffer += self._resampler.flush()
        remainder = len(self._buffer) % self._frame_bytes
        if remainder:
            self._buffer += bytes(self._frame_bytes - remainder)
        self._resampler = self._new_resampler()
        if self._drained is not None and self._buffer:
            self._drained.clear()

    def end(self) -> None:
        """No more input: flush the resampler, pad the tail to a whole frame, finish once played out."""
        if self._ended:
            return
        self.end_utterance()
        self._ended = True
        if not self._buffer:
            self._set_drained()
            self._finish()

    def play(self, chunks: AsyncIterable[bytes], *, end: bool = False) -> asyncio.Task[None]:
        """Feed from an async producer of PCM16 chunks in a task (cancelled by :meth:`flush`).

        When the producer is exhausted: :meth:`end_utterance`, and :meth:`end` too if ``end``.
        Returns the task.
        """

        async def pump() -> None:
            async for chunk in chunks:
                self.feed(chunk)
            if end:
                self.end()
            else:
                self.end_utterance()

        task = asyncio.get_running_loop().create_task(pump())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def flush(self) -> None:
        """Drop all queued audio now (barge-in): the next tick sends silence."""
        for task in list(self._tasks):
            task.cancel()
        self._buffer.clear()
        self._resampler = self._new_resampler()
        self.flushes += 1
        self._set_drained()
        if self._ended:
            self._finish()

    def read_frame(self) -> bytes | None:
        buffer = self._buffer
        size = self._frame_bytes
        if len(buffer) < size:
            return None
        frame = bytes(buffer[:size])
        del buffer[:size]
        self.frames_played += 1
        if not buffer:
            self._set_drained()
            if self._ended:
                self._finish()
        return frame

    def _set_drained(self) -> None:
        if self._drained is not None:
            self._drained.set()

    async def wait_drained(self) -> None:
        """Wait until everything fed so far has been sent (or flushed)."""
        if len(self._buffer) < self._frame_bytes:
            return
        if self._drained is None:
            self._drained = asyncio.Event()
        self._drained.clear()
        await self._drained.wait()  # a cancelled waiter is cancelled (a barge-in stops a reply waiting here)
