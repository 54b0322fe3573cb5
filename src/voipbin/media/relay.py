"""A frame relay: PCM frames pushed by one RTP session's receive path, played by another's send path.

Used by the two-party bridge (:mod:`voipbin.calls.bridge`). A relay holds at most
``max_delay_frames`` frames (default 5, 100 ms): a late reader never builds up delay; the
oldest frames are dropped. ``allowed()`` is asked on every push (hold and mute stop audio there).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from voipbin.media.sources import AudioSource

DEFAULT_MAX_DELAY_FRAMES = 5  # 100 ms


class FrameRelay(AudioSource):
    """Frames pushed by one session's receive path, read by another's send path."""

    def __init__(self, allowed: Callable[[], bool], max_delay_frames: int = DEFAULT_MAX_DELAY_FRAMES) -> None:
        self._frames: deque[bytes] = deque(maxlen=max_delay_frames)
        self._allowed = allowed
        self.relayed = 0

    def push(self, frame: bytes) -> None:
        if self._allowed():
            self._frames.append(frame)

    def read_frame(self) -> bytes | None:
        if not self._frames:
            return None
        self.relayed += 1
        return self._frames.popleft()

    def flush(self) -> None:
        self._frames.clear()  # a flush of the listener's outbound must not end the bridge

    def stop(self) -> None:
        self._frames.clear()
        self._finish()
