"""Fakes for the SIP unit tests: a manual clock and a transport that records what is sent."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable


class FakeTimer:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """A :class:`voipbin.sip.transaction.Clock` whose time only moves on ``advance``."""

    def __init__(self) -> None:
        self.now = 0.0
        self._queue: list[tuple[float, int, FakeTimer, Callable[[], None]]] = []
        self._seq = itertools.count()

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Callable[[], None]) -> FakeTimer:
        timer = FakeTimer()
        heapq.heappush(self._queue, (self.now + delay, next(self._seq), timer, callback))
        return timer

    def pending(self) -> list[float]:
        """Seconds from now until each armed (not cancelled) timer is due, soonest first."""
        return sorted(when - self.now for when, _, timer, _ in self._queue if not timer.cancelled)

    def advance(self, seconds: float) -> None:
        """Move time forward, firing due timers in order (timers they arm fire too if due)."""
        end = self.now + seconds
        while self._queue and self._queue[0][0] <= end:
            when, _, timer, callback = heapq.heappop(self._queue)
            self.now = max(self.now, when)
            if not timer.cancelled:
                callback()
        self.now = end


class FakeTransport:
    """Records ``(data, addr)`` for every send."""

    def __init__(self, name: str = "UDP", reliable: bool = False) -> None:
        self.name = name
        self.reliable = reliable
        self.sent: list[tuple[bytes, tuple[str, int]]] = []

    @property
    def local_address(self) -> tuple[str, int]:
        return ("127.0.0.1", 5060)

    def send(self, data: bytes, addr: tuple[str, int]) -> None:
        self.sent.append((data, addr))

    def close(self) -> None:
        pass
