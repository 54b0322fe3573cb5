"""An async, bounded queue of 20 ms PCM16 frames for consumers of received audio (STT).

The producer is the media tick or the receive path, which must never wait: a full queue
drops its oldest frame instead (counted), so a stalled consumer costs bounded memory.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

DEFAULT_MAX_FRAMES = 250  # 5 s

FrameConsumer = Callable[[bytes], None]
"""Called with each 20 ms PCM16 frame (an RTP session's inbound consumers, outbound taps); must not block."""


class FrameQueue:
    """Frame sink (call it with a frame) and async iterator of frames.

    Never blocks the producer: when ``max_frames`` are waiting the oldest is dropped
    (counted in ``dropped``). Iteration ends after :meth:`close`.
    """

    def __init__(self, max_frames: int = DEFAULT_MAX_FRAMES) -> None:
        self._frames: deque[bytes] = deque()
        self._max_frames = max_frames
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self.dropped = 0

    def __call__(self, frame: bytes) -> None:
        if self._closed:
            return
        if len(self._frames) >= self._max_frames:
            self._frames.popleft()
            self.dropped += 1
        self._frames.append(frame)
        self._wake()

    def close(self) -> None:
        """No more frames: iteration ends once those queued are read. Later frames are ignored."""
        self._closed = True
        self._wake()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def max_frames(self) -> int:
        return self._max_frames

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __len__(self) -> int:
        return len(self._frames)

    def get_nowait(self) -> bytes:
        """The next frame if one is queued; raises IndexError when empty."""
        return self._frames.popleft()

    async def get(self) -> bytes:
        """The next frame; raises EOFError once closed and empty."""
        while not self._frames:
            if self._closed:
                raise EOFError("frame queue closed")
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._frames.popleft()

    def __aiter__(self) -> FrameQueue:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self.get()
        except EOFError:
            raise StopAsyncIteration from None
