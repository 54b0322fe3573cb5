"""Recorder taps: collect or write 20 ms PCM16 frames (received or sent) to WAV."""

from __future__ import annotations

import wave
from os import PathLike

import numpy as np

from .pcm import SAMPLE_RATE_HZ


class FrameCollector:
    """Keeps every frame in memory (tests, short clips). Call it with each frame."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def __call__(self, frame: bytes) -> None:
        self.frames.append(frame)

    @property
    def pcm(self) -> bytes:
        return b"".join(self.frames)

    def samples(self) -> np.ndarray:
        """Everything collected as an int16 array."""
        return np.frombuffer(self.pcm, dtype="<i2")


class WavRecorder:
    """Writes each frame it is called with to a 16-bit mono WAV file.

    File writes happen on the caller's thread (the event loop): meant for tests and short
    recordings; a production recorder should hand frames to a writer thread.
    """

    def __init__(self, path: str | PathLike[str], sample_rate_hz: int = SAMPLE_RATE_HZ) -> None:
        self.path = path
        self._wav = wave.open(str(path), "wb")
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(sample_rate_hz)
        self.frames_written = 0

    def __call__(self, frame: bytes) -> None:
        if self._wav is not None:
            self._wav.writeframesraw(frame)
            self.frames_written += 1

    def close(self) -> None:
        """Finish the WAV header and close the file (idempotent)."""
        if self._wav is not None:
            self._wav.close()
            self._wav = None

    def __enter__(self) -> WavRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
