"""Cursor pagination as upstream does it: newest first, the cursor is the last item's ``tm_create``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from voipbin.common.clock import format_ts, parse_ts
from voipbin.common.errors import InvalidArgument

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 100


def clamp_page_size(page_size: int | None) -> int:
    """``page_size`` ≤ 0, missing or > 100 becomes 100 (upstream behaviour)."""
    if page_size is None or page_size <= 0 or page_size > MAX_PAGE_SIZE:
        return DEFAULT_PAGE_SIZE
    return page_size


async def paginate(
    db: AsyncSession, stmt: Select[Any], model: Any, page_size: int | None, page_token: str | None
) -> tuple[Sequence[Any], str]:
    """Run ``stmt`` (a select of ``model``) one page at a time.

    Returns ``(items, next_page_token)``; the token is ``""`` when no more items follow.
    Raises InvalidArgument (-> 400) for a token that is not a timestamp.
    """
    size = clamp_page_size(page_size)
    if page_token:
        try:
            cursor = parse_ts(page_token)
        except ValueError as exc:
            raise InvalidArgument("page_token is not a valid cursor", field="page_token") from exc
        stmt = stmt.where(model.tm_create < cursor)
    stmt = stmt.order_by(model.tm_create.desc(), model.id.desc()).limit(size + 1)
    rows = list((await db.scalars(stmt)).all())
    more = len(rows) > size
    items = rows[:size]
    token = format_ts(items[-1].tm_create) if more and items else ""
    return items, token or ""
