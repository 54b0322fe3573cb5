"""A two-party bridge: each call's received audio is sent to the other (``connect``).

Frame-level relay (DESIGN.md "Terms", per leg): one call's *incoming side* (what its endpoint
says, with any ``in`` speaking on that call mixed in) is pushed into a :class:`FrameRelay` that
the other call's outbound mixer plays, so it is ``out`` audio of the other leg (what that endpoint
hears, and what that leg's ``out`` transcription gets). The ``in`` transcription of either leg
stays its own endpoint's voice: nothing injected reaches it. Both legs may use different codecs
(PCMU one side, PCMA the other).
A relay holds at most ``max_delay_frames``: a late reader never builds up delay.
Hold and mute (``calls.controls``) stop a side's audio from crossing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from voipbin.media.session import RtpSession
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


class Bridge:
    """Relay audio between ``a`` and ``b`` until :meth:`close`.

    ``a_sends``/``b_sends``: whether each side's audio may cross now (mute ``in``/hold);
    ``a_hears``/``b_hears``: whether each side may hear the other (hold).
    """

    def __init__(self, a: RtpSession, b: RtpSession, *,
                 a_sends: Callable[[], bool] = lambda: True, b_sends: Callable[[], bool] = lambda: True,
                 a_hears: Callable[[], bool] = lambda: True, b_hears: Callable[[], bool] = lambda: True) -> None:
        self.a, self.b = a, b
        self.a_to_b = FrameRelay(lambda: a_sends() and b_hears())
        self.b_to_a = FrameRelay(lambda: b_sends() and a_hears())
        a.add_inbound_consumer(self.a_to_b.push, injected=True)
        b.add_inbound_consumer(self.b_to_a.push, injected=True)
        b.outbound.add(self.a_to_b)
        a.outbound.add(self.b_to_a)

    def close(self) -> None:
        """Stop relaying (idempotent)."""
        self.a.remove_inbound_consumer(self.a_to_b.push)
        self.b.remove_inbound_consumer(self.b_to_a.push)
        self.b.outbound.remove(self.a_to_b)
        self.a.outbound.remove(self.b_to_a)
        self.a_to_b.stop()
        self.b_to_a.stop()
