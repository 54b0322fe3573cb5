"""Backoff computation, outcome classification and outbox state transitions (pure)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from voipbin.events.outbox import DELIVERED, FAILED, PENDING, Transition, transition, webhook_body
from voipbin.events.retry import Outcome, RetryPolicy, classify
from voipbin.events.model import Event

NOW = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize("status, outcome", [
    (200, Outcome.DELIVERED), (201, Outcome.DELIVERED), (204, Outcome.DELIVERED), (299, Outcome.DELIVERED),
    (500, Outcome.RETRY), (502, Outcome.RETRY), (503, Outcome.RETRY), (599, Outcome.RETRY), (None, Outcome.RETRY),
    (400, Outcome.PERMANENT), (401, Outcome.PERMANENT), (404, Outcome.PERMANENT), (410, Outcome.PERMANENT),
    (301, Outcome.PERMANENT), (302, Outcome.PERMANENT),
])
def test_classify(status: int | None, outcome: Outcome) -> None:
    assert classify(status) is outcome


def test_nominal_backoff_doubles_from_1s_and_caps_at_60s() -> None:
    p = RetryPolicy()
    assert [p.nominal_delay(n) for n in range(1, 10)] == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert p.nominal_delay(500) == 60
    with pytest.raises(ValueError):
        p.nominal_delay(0)


def test_jitter_stays_within_20_percent_and_under_the_cap() -> None:
    p, rng = RetryPolicy(), random.Random(7)
    for n in range(1, 12):
        delays = [p.delay(n, rng) for _ in range(200)]
        nominal = p.nominal_delay(n)
        assert all(0.8 * nominal <= d <= min(60, 1.2 * nominal) for d in delays)
        if 1.2 * nominal <= 60:
            assert len(set(delays)) > 100  # actually jittered
    assert RetryPolicy(jitter=0).delay(3) == 4


def test_transitions() -> None:
    p, rng = RetryPolicy(max_attempts=3), random.Random(1)
    assert transition(1, Outcome.DELIVERED, p, NOW) == Transition(DELIVERED, None)
    assert transition(1, Outcome.PERMANENT, p, NOW) == Transition(FAILED, None)
    step = transition(1, Outcome.RETRY, p, NOW, rng)
    assert step.status == PENDING and NOW + timedelta(seconds=0.8) <= step.tm_next_attempt <= NOW + timedelta(seconds=1.2)
    step = transition(2, Outcome.RETRY, p, NOW, rng)
    assert step.status == PENDING and step.tm_next_attempt >= NOW + timedelta(seconds=1.6)
    assert transition(3, Outcome.RETRY, p, NOW) == Transition(FAILED, None)  # attempts used up
    assert transition(3, Outcome.DELIVERED, p, NOW) == Transition(DELIVERED, None)


def test_default_policy_is_8_attempts() -> None:
    assert RetryPolicy().max_attempts == 8
    assert not RetryPolicy().gives_up(7) and RetryPolicy().gives_up(8)


def test_webhook_body_is_type_and_data() -> None:
    e = Event("call_created", "c", "call", "x", {"id": "x", "t": "é"})
    assert webhook_body(e) == '{"type":"call_created","data":{"id":"x","t":"é"}}'.encode()
