"""Per-key attempt limits for the unauthenticated endpoints (login, signup): 429 + ``Retry-After``.

A fixed window per key (a username, an e-mail address, a source address): at most ``limit`` hits
within ``window_seconds`` of the key's first hit, then :class:`ResourceExhausted` until the window
ends. State is in-process and bounded (``max_keys``, least recently used dropped first); each API
process counts its own traffic.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from cachetools import TTLCache

from voipbin.common.errors import ResourceExhausted


class RateLimiter:
    """At most ``limit`` hits per key per ``window_seconds``; ``clock`` is monotonic seconds."""

    def __init__(self, limit: int, window_seconds: float, *, what: str, max_keys: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = limit
        self._window = window_seconds
        self._what = what
        self._clock = clock
        # key -> [window start, hits]; mutated in place so the entry's TTL runs from the window start
        self._windows: TTLCache[str, list[float]] = TTLCache(maxsize=max_keys, ttl=window_seconds, timer=clock)

    def check(self, key: str) -> None:
        """Raise ResourceExhausted (with the seconds until the window ends) when ``key`` is at its limit."""
        entry = self._current(key)
        if entry is not None and entry[1] >= self._limit:
            retry_after = max(1, math.ceil(entry[0] + self._window - self._clock()))
            raise ResourceExhausted(f"too many {self._what}; retry in {retry_after} s", retry_after=retry_after)

    def hit(self, key: str) -> None:
        """Count one attempt for ``key``."""
        entry = self._current(key)
        if entry is None:
            self._windows[key] = [self._clock(), 1.0]
        else:
            entry[1] += 1

    def check_and_hit(self, key: str) -> None:
        """:meth:`check`, then :meth:`hit` when allowed."""
        self.check(key)
        self.hit(key)

    def _current(self, key: str) -> list[float] | None:
        entry = self._windows.get(key)
        if entry is not None and entry[0] + self._window <= self._clock():
            self._windows.pop(key, None)
            return None
        return entry
