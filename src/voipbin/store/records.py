"""Row helpers every service repeats: "get it if this customer owns it, else 404", soft delete.

``owned(db, Model, id, customer_id)`` reads one row by primary key; a missing row, one of another
customer, or (unless ``deleted_ok``) a soft-deleted one (``tm_delete`` set) is
:class:`~voipbin.common.errors.NotFound` (-> 404, ``"<what> not found"``), so an API never tells
a foreign row from a missing one. ``soft_delete(row)`` stamps ``tm_delete`` (and ``tm_update``).
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from voipbin.common.clock import utcnow
from voipbin.common.errors import NotFound

Row = TypeVar("Row")


async def owned(db: AsyncSession, model: type[Row], row_id: str, customer_id: str, *, what: str,
                deleted_ok: bool = False) -> Row:
    """The ``model`` row ``row_id`` of ``customer_id``; NotFound(``"<what> not found"``) otherwise."""
    row: Any = await db.get(model, row_id)
    if row is None or row.customer_id != customer_id or (not deleted_ok and row.tm_delete is not None):
        raise NotFound(f"{what} not found")
    return row  # type: ignore[no-any-return]


def soft_delete(row: Any) -> None:
    """Mark ``row`` deleted now (``tm_delete`` = ``tm_update`` = now); the caller commits."""
    row.tm_delete = row.tm_update = utcnow()
