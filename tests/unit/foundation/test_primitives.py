"""Pure functions of the foundation: timestamps, page sizes, E.164, JWT, permissions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voipbin.auth.identity import (
    PERMISSION_CUSTOMER_ADMIN, PERMISSION_CUSTOMER_AGENT, PERMISSION_CUSTOMER_MANAGER, Identity,
)
from voipbin.auth.tokens import TokenIssuer
from voipbin.common.clock import format_ts, parse_ts
from voipbin.common.errors import InvalidArgument, Unauthenticated
from voipbin.numbers.service import validate_e164
from voipbin.store.pagination import clamp_page_size


def test_timestamps_have_microseconds_and_z() -> None:
    ts = datetime(2026, 1, 15, 9, 30, 0, 12, tzinfo=UTC)
    assert format_ts(ts) == "2026-01-15T09:30:00.000012Z"
    assert format_ts(None) is None


@given(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9000, 1, 1), timezones=st.just(UTC)))
def test_timestamp_round_trip(ts: datetime) -> None:
    assert parse_ts(format_ts(ts)) == ts  # type: ignore[arg-type]


@pytest.mark.parametrize(("given_size", "expected"), [(None, 100), (0, 100), (-1, 100), (101, 100), (1, 1), (100, 100)])
def test_page_size_clamped_like_upstream(given_size: int | None, expected: int) -> None:
    assert clamp_page_size(given_size) == expected


@pytest.mark.parametrize("good", ["+15551234567", "+821012345678", "+12", "+123456789012345"])
def test_e164_accepts(good: str) -> None:
    assert validate_e164(good) == good


@pytest.mark.parametrize("bad", ["15551234567", "+0155", "+1", "+1234567890123456", "+1 555", "+1-555", None, 15551234567])
def test_e164_rejects_naming_the_field(bad: object) -> None:
    with pytest.raises(InvalidArgument) as exc:
        validate_e164(bad, field="source.target")
    assert exc.value.field == "source.target" and "source.target" in exc.value.message


def test_jwt_round_trip_and_tamper() -> None:
    issuer = TokenIssuer("k" * 32, 60)
    token = issuer.issue(agent_id="a", customer_id="c", permission=PERMISSION_CUSTOMER_ADMIN, username="u")
    ident = issuer.verify(token)
    assert (ident.customer_id, ident.agent_id, ident.kind) == ("c", "a", "token")
    with pytest.raises(Unauthenticated):
        TokenIssuer("x" * 32, 60).verify(token)
    with pytest.raises(Unauthenticated):
        issuer.verify(token[:-2] + "xx")


def test_admin_implies_manager_but_agent_has_neither() -> None:
    admin = Identity("c", PERMISSION_CUSTOMER_ADMIN, "token")
    manager = Identity("c", PERMISSION_CUSTOMER_MANAGER, "token")
    agent = Identity("c", PERMISSION_CUSTOMER_AGENT, "token")
    assert admin.has(PERMISSION_CUSTOMER_MANAGER) and admin.has(PERMISSION_CUSTOMER_ADMIN)
    assert manager.has(PERMISSION_CUSTOMER_MANAGER) and not manager.has(PERMISSION_CUSTOMER_ADMIN)
    assert not agent.has(PERMISSION_CUSTOMER_ADMIN | PERMISSION_CUSTOMER_MANAGER)
