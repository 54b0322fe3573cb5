"""Wall-clock helpers: UTC timestamps in the wire format ``2026-01-15T09:30:00.000000Z``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current moment, timezone-aware UTC, microsecond precision."""
    return datetime.now(UTC)


def format_ts(value: datetime | None) -> str | None:
    """ISO 8601 UTC with microseconds and ``Z``; ``None`` (a moment not yet happened) stays None."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(value: str) -> datetime:
    """Inverse of :func:`format_ts`; raises ValueError on other formats."""
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def new_id() -> str:
    """A random UUID4 as the canonical lower-case string."""
    return str(uuid.uuid4())
