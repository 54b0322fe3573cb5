"""Number business rules: E.164 validation, one active owner per number, flow ids, soft delete, and
(with a pool configured, as ``serve`` has) numbers claimed only from the operator's pool."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from voipbin.common.clock import format_ts, utcnow
from voipbin.common.errors import AlreadyExists, InvalidArgument
from voipbin.events.model import Event, EventPublisher
from voipbin.numbers.pool import E164, NumberPool, country_of
from voipbin.store.models import Number
from voipbin.store.pagination import paginate
from voipbin.store.records import owned, soft_delete

AVAILABLE_BATCH = 200  # pool numbers checked against the store per query
MAX_PAGE_SIZE = 100
NUMBER_TYPES = ("normal", "virtual")
UPDATABLE = ("name", "detail", "call_flow_id", "message_flow_id")


def validate_e164(value: Any, field: str = "number") -> str:
    """``+`` then 2–15 digits, no leading zero (ITU-T E.164); raises InvalidArgument naming ``field``."""
    if not isinstance(value, str) or not E164.match(value):
        raise InvalidArgument(f"{field} must be an E.164 number such as +15551234567", field=field)
    return value


def _flow_id(value: Any, field: str) -> str:
    if value in (None, ""):
        return ""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError as exc:
        raise InvalidArgument(f"{field} must be a UUID", field=field) from exc


def serialize(n: Number) -> dict[str, Any]:
    """The ``NumberManagerNumber`` shape."""
    return {
        "id": n.id, "customer_id": n.customer_id, "number": n.number, "type": n.type,
        "call_flow_id": n.call_flow_id or "00000000-0000-0000-0000-000000000000",
        "message_flow_id": n.message_flow_id or "00000000-0000-0000-0000-000000000000",
        "name": n.name, "detail": n.detail, "status": n.status, "t38_enabled": n.t38_enabled,
        "emergency_enabled": n.emergency_enabled, "metadata": {"rtp_debug": False},
        "tm_purchase": format_ts(n.tm_purchase), "tm_renew": format_ts(n.tm_renew),
        "tm_create": format_ts(n.tm_create), "tm_update": format_ts(n.tm_update),
        "tm_delete": format_ts(n.tm_delete),
    }


def _not_available(number: str) -> InvalidArgument:
    return InvalidArgument(f"number {number} is not available; choose one from GET /v1.0/available_numbers",
                           field="number")


class NumberService:
    """Owned numbers. With ``pool`` (``serve``, the sandbox) only the pool's unowned numbers can be
    claimed; without it (embedded use, tests) any E.164 number nobody owns."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], bus: EventPublisher,
                 pool: NumberPool | None = None) -> None:
        self._sessions = sessions
        self._bus = bus
        self._pool = pool

    async def available(self, country_code: Any, page_size: int | None) -> list[dict[str, Any]]:
        """``NumberManagerAvailableNumber`` items: up to ``page_size`` (default and max 100) pool numbers
        of ``country_code`` (ISO 3166 alpha-2) that nobody owns, in pool order. 400 naming
        ``country_code`` when it is missing; [] without a pool."""
        if not isinstance(country_code, str) or not country_code.strip():
            raise InvalidArgument("country_code is required (ISO 3166 alpha-2, e.g. US)", field="country_code")
        country = country_code.strip().upper()
        limit = page_size if page_size and 0 < page_size <= MAX_PAGE_SIZE else MAX_PAGE_SIZE
        found: list[dict[str, Any]] = []
        batch: list[str] = []
        for number in self._pool or ():
            if country_of(number) == country:
                batch.append(number)
            if len(batch) == AVAILABLE_BATCH:
                found += await self._unowned(batch, limit - len(found))
                batch = []
                if len(found) >= limit:
                    return found
        if batch:
            found += await self._unowned(batch, limit - len(found))
        return found

    async def _unowned(self, numbers: list[str], limit: int) -> list[dict[str, Any]]:
        async with self._sessions() as db:
            owned = set((await db.scalars(select(Number.number).where(
                Number.number.in_(numbers), Number.tm_delete.is_(None)))).all())
        return [{"number": n, "country": country_of(n), "region": "", "postal_code": "", "features": ["voice"]}
                for n in numbers if n not in owned][:limit]

    async def create(self, customer_id: str, body: dict[str, Any]) -> Number:
        """Take ownership of ``body["number"]``.

        With a pool: 400 naming ``number`` when it is not one of the pool's unowned numbers (outside the
        pool and owned by anyone answer alike). Without: 409 ALREADY_EXISTS when someone owns it.
        """
        number = validate_e164(body.get("number"))
        if self._pool is not None and number not in self._pool:
            raise _not_available(number)
        ntype = body.get("type") or "normal"
        if ntype not in NUMBER_TYPES:
            raise InvalidArgument("type must be normal or virtual", field="type")
        fields = {f: body.get(f) or "" for f in ("name", "detail")}
        for f in fields:
            if not isinstance(fields[f], str):
                raise InvalidArgument(f"{f} must be a string", field=f)
        row = Number(customer_id=customer_id, number=number, type=ntype,
                     call_flow_id=_flow_id(body.get("call_flow_id"), "call_flow_id"),
                     message_flow_id=_flow_id(body.get("message_flow_id"), "message_flow_id"), **fields)
        try:
            async with self._sessions() as db, db.begin():
                await self.add_in(db, row)
        except (IntegrityError, AlreadyExists) as exc:  # IntegrityError: a concurrent create won the unique index
            if self._pool is not None:
                raise _not_available(number) from None
            raise AlreadyExists(f"number {row.number} is already in use", field="number") from exc
        await self._publish(row, "number_created")
        return row

    async def add_in(self, db: AsyncSession, row: Number) -> Number:
        taken = await db.scalar(
            select(Number.id).where(Number.number == row.number, Number.tm_delete.is_(None)))
        if taken is not None:
            raise AlreadyExists(f"number {row.number} is already in use", field="number")
        db.add(row)
        await db.flush()
        return row

    async def list(self, customer_id: str, page_size: int | None, page_token: str | None
                   ) -> tuple[Sequence[Number], str]:
        async with self._sessions() as db:
            stmt = select(Number).where(Number.customer_id == customer_id, Number.tm_delete.is_(None))
            return await paginate(db, stmt, Number, page_size, page_token)

    async def get(self, customer_id: str, number_id: str) -> Number:
        async with self._sessions() as db:
            return await self._owned(db, customer_id, number_id)

    async def find_owned(self, customer_id: str, number: str) -> Number | None:
        """The customer's active row for an E.164 string, or None (used to check call sources)."""
        async with self._sessions() as db:
            return await db.scalar(select(Number).where(
                Number.customer_id == customer_id, Number.number == number, Number.tm_delete.is_(None)))

    async def find_active(self, number: str) -> Number | None:
        """The active row for an E.164 string whoever owns it, or None (routes inbound trunk calls)."""
        async with self._sessions() as db:
            return await db.scalar(select(Number).where(Number.number == number, Number.tm_delete.is_(None)))

    async def first_owned(self, customer_id: str) -> Number | None:
        """The customer's oldest active number, or None (caller ID of an extension calling out)."""
        async with self._sessions() as db:
            return await db.scalar(select(Number).where(
                Number.customer_id == customer_id, Number.tm_delete.is_(None)).order_by(Number.tm_create).limit(1))

    async def update(self, customer_id: str, number_id: str, body: dict[str, Any]) -> Number:
        async with self._sessions() as db, db.begin():
            row = await self._owned(db, customer_id, number_id)
            for f in UPDATABLE:
                if f in body:
                    value = body[f]
                    if f.endswith("_flow_id"):
                        value = _flow_id(value, f)
                    elif not isinstance(value, str):
                        raise InvalidArgument(f"{f} must be a string", field=f)
                    setattr(row, f, value)
            row.tm_update = utcnow()
        await self._publish(row, "number_updated")
        return row

    async def delete(self, customer_id: str, number_id: str) -> Number:
        async with self._sessions() as db, db.begin():
            row = await self._owned(db, customer_id, number_id)
            soft_delete(row)
            row.status = "deleted"
        await self._publish(row, "number_deleted")
        return row

    @staticmethod
    async def _owned(db: AsyncSession, customer_id: str, number_id: str) -> Number:
        return await owned(db, Number, number_id, customer_id, what="number")

    async def _publish(self, row: Number, event_type: str) -> None:
        await self._bus.publish(Event(event_type, row.customer_id, "number", row.id, serialize(row)))
