"""Webhook retry policy: which outcomes are retried, and after how long (pure, no I/O).

A 2xx is delivered; a 5xx, a timeout or a transport error is retried with exponential backoff
and jitter (``base_seconds`` doubling per attempt, capped at ``max_delay_seconds``) until
``max_attempts`` attempts were made, then the delivery is failed; any other status (4xx, 3xx)
is a permanent failure, recorded and not retried.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    PERMANENT = "permanent"


def classify(status_code: int | None) -> Outcome:
    """The outcome of one attempt: ``status_code`` None means timeout or transport error (retried)."""
    if status_code is None or 500 <= status_code <= 599:
        return Outcome.RETRY
    if 200 <= status_code <= 299:
        return Outcome.DELIVERED
    return Outcome.PERMANENT


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``delay(n)`` is the wait after the n-th failed attempt (n >= 1), in seconds."""

    base_seconds: float = 1.0
    max_delay_seconds: float = 60.0
    max_attempts: int = 8
    jitter: float = 0.2  # +-20 % of the nominal delay

    def nominal_delay(self, attempt: int) -> float:
        """``min(max_delay_seconds, base_seconds * 2**(attempt-1))`` without jitter."""
        if attempt < 1:
            raise ValueError("attempt counts from 1")
        return min(self.max_delay_seconds, self.base_seconds * 2 ** min(attempt - 1, 62))

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """The nominal delay with uniform jitter of +-``jitter``, never above ``max_delay_seconds``."""
        r = (rng or random).random()
        return min(self.max_delay_seconds, self.nominal_delay(attempt) * (1 + self.jitter * (2 * r - 1)))

    def gives_up(self, attempts: int) -> bool:
        """True when ``attempts`` attempts were made and no more are allowed."""
        return attempts >= self.max_attempts
