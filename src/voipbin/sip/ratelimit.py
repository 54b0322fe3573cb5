"""Per-source token buckets: a flood from one address cannot starve the others."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class TokenBuckets:
    """One bucket per key (source IP): ``rate_per_s`` tokens per second, at most ``burst`` stored.

    ``allow(key)`` takes one token and returns False when the bucket is empty. Memory is bounded by
    ``max_keys`` (least recently seen keys are forgotten, i.e. refilled).
    """

    def __init__(self, rate_per_s: float, burst: float, max_keys: int = 65536,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()

    def allow(self, key: str) -> bool:
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = [self.burst, now]
            self._buckets[key] = bucket
            if len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket[0] = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate_per_s)
            bucket[1] = now
        if bucket[0] < 1.0:
            return False
        bucket[0] -= 1.0
        return True
