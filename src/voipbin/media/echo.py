"""Echo: send back what the endpoint says (the flow ``echo`` action)."""

from __future__ import annotations

from collections import deque

from .sources import AudioSource

DEFAULT_MAX_DELAY_FRAMES = 10  # 200 ms


class EchoSource(AudioSource):
    """A frame sink and an outbound source at once: frames pushed in come back out in order.

    Attach with ``session.add_inbound_consumer(echo.push)`` and ``session.outbound.add(echo)``
    (or :meth:`RtpSession.start_echo`). At most ``max_delay_frames`` are held; older ones are
    dropped so the echo delay stays bounded.
    """

    def __init__(self, max_delay_frames: int = DEFAULT_MAX_DELAY_FRAMES) -> None:
        self._frames: deque[bytes] = deque(maxlen=max_delay_frames)

    def push(self, frame: bytes) -> None:
        """Queue one received 20 ms PCM16 frame."""
        self._frames.append(frame)

    __call__ = push

    def read_frame(self) -> bytes | None:
        return self._frames.popleft() if self._frames else None

    def flush(self) -> None:
        self._frames.clear()

    def stop(self) -> None:
        self._frames.clear()
        self._finish()
