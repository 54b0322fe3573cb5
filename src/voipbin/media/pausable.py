"""A source that can be paused without losing audio (a barge-in that may turn out false).

While :attr:`PausableSource.paused` the wrapped source is not read at all: it yields nothing (the
endpoint hears silence from the next 20 ms tick) and its audio waits, so resuming plays on from the
frame where it stopped. ``frames_out`` counts the frames actually handed to the sender;
:meth:`PausableSource.next_frame` tells when the next one is (first-audio latency).
"""

from __future__ import annotations

import asyncio

from voipbin.media.codecs import Codec
from voipbin.media.sources import AudioSource


class PausableSource(AudioSource):
    """Wraps ``source``; finishes when it does."""

    def __init__(self, source: AudioSource) -> None:
        self.source = source
        self.paused = False
        self.frames_out = 0
        self._waiters: list[asyncio.Future[float]] = []

    def next_frame(self) -> asyncio.Future[float]:
        """A future resolved with the loop time at which the next frame is handed to the sender."""
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        return future

    def read_frame(self) -> bytes | None:
        if self.paused:
            return None
        frame = self.source.read_frame()
        return self._after(frame)

    def read_payload(self, codec: Codec) -> bytes | None:
        if self.paused:
            return None
        return self._after(self.source.read_payload(codec))

    def _after(self, out: bytes | None) -> bytes | None:
        if out is not None:
            self.frames_out += 1
            if self._waiters:
                waiters, self._waiters = self._waiters, []
                now = asyncio.get_running_loop().time()
                for future in waiters:
                    if not future.done():
                        future.set_result(now)
        if self.source.finished:
            self._finish()
        return out

    def flush(self) -> None:
        self.source.flush()
