"""A party's audio frame by frame, timed on the test's loop clock: what a phone heard or a caller sent
(``FrameLog``: (loop time, RMS) per 20 ms frame and the PCM, 8 kHz PCM16), and waiting on it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: a 20 ms frame (8 kHz PCM16) above this RMS carries speech (about -40 dBFS)
VOICED_RMS = 300.0


def rms(frame: bytes) -> float:
    """RMS of one PCM16 frame (0 for an empty one)."""
    x = np.frombuffer(frame, dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(x**2))) if len(x) else 0.0


@dataclass
class FrameLog:
    """The 20 ms frames one party heard or sent: (loop time, RMS) each, and the PCM (8 kHz).

    Call it with each frame (an inbound consumer of an :class:`RtpSession`, or a :class:`Voice`'s
    record); :meth:`until` waits for a condition checked on every frame."""

    frames: list[tuple[float, float]] = field(default_factory=list)
    pcm: bytearray = field(default_factory=bytearray)
    _waiters: list[tuple[Any, asyncio.Future[None]]] = field(default_factory=list)

    def __call__(self, frame: bytes) -> None:
        self.frames.append((asyncio.get_running_loop().time(), rms(frame)))
        self.pcm += frame
        for cond, fut in list(self._waiters):
            if not fut.done() and cond(self):
                fut.set_result(None)
                self._waiters.remove((cond, fut))

    async def until(self, cond: Any, timeout: float = 30) -> None:
        """Wait until ``cond(log)`` holds (checked on every frame); TimeoutError after ``timeout`` s."""
        if cond(self):
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((cond, fut))
        await asyncio.wait_for(fut, timeout)

    def voiced_since(self, index: int) -> int:
        """Frames carrying speech from frame ``index`` on."""
        return sum(1 for _, level in self.frames[index:] if level > VOICED_RMS)

    def trailing_silence(self) -> int:
        """Frames without speech since the last one with it."""
        n = 0
        for _, level in reversed(self.frames):
            if level > VOICED_RMS:
                break
            n += 1
        return n

    def voiced_times(self, start: int = 0) -> list[float]:
        """Loop times of the frames carrying speech from frame ``start`` on."""
        return [at for at, level in self.frames[start:] if level > VOICED_RMS]

    async def utterance(self, start: int = 0, *, silence_s: float = 0.8, timeout: float = 40) -> bytes:
        """Wait for speech after frame ``start`` followed by ``silence_s`` of silence; its PCM."""
        await self.until(lambda g: g.voiced_since(start) > 0 and g.trailing_silence() * 0.02 >= silence_s, timeout)
        return bytes(self.pcm[start * 320:])
