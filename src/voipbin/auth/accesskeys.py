"""Accesskeys: long-lived API keys (``vb_`` + 32 random chars), stored as SHA-256, shown once."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from voipbin.auth.identity import PERMISSION_CUSTOMER_ADMIN, Identity
from voipbin.common.clock import format_ts, utcnow
from voipbin.common.errors import InvalidArgument, Unauthenticated
from voipbin.events.model import Event, EventPublisher
from voipbin.store.models import Accesskey
from voipbin.store.pagination import paginate
from voipbin.store.records import owned, soft_delete

TOKEN_PREFIX = "vb_"
PREFIX_LEN = 11  # "vb_" + 8 chars, as upstream's token_prefix example
MIN_EXPIRE_SECONDS = 86400
DEFAULT_EXPIRE_SECONDS = 365 * 86400
MAX_EXPIRE_SECONDS = 100 * 365 * 86400


def hash_token(token: str) -> str:
    """SHA-256 hex of a token: keys are 190 random bits, so a fast hash is enough for lookup."""
    return hashlib.sha256(token.encode()).hexdigest()


def serialize(key: Accesskey, token: str | None = None) -> dict[str, Any]:
    """The ``CustomerManagerAccesskey`` shape; ``token`` is present only right after creation."""
    data: dict[str, Any] = {
        "id": key.id,
        "customer_id": key.customer_id,
        "name": key.name,
        "detail": key.detail,
        "token_prefix": key.token_prefix,
        "tm_expire": format_ts(key.tm_expire),
        "tm_create": format_ts(key.tm_create),
        "tm_update": format_ts(key.tm_update),
        "tm_delete": format_ts(key.tm_delete),
    }
    if token is not None:
        data["token"] = token
    return data


def _check_expire(expire: Any) -> int:
    if expire is None:
        return DEFAULT_EXPIRE_SECONDS
    if isinstance(expire, bool) or not isinstance(expire, int):
        raise InvalidArgument("expire must be an integer number of seconds", field="expire")
    if expire < MIN_EXPIRE_SECONDS or expire > MAX_EXPIRE_SECONDS:
        raise InvalidArgument(f"expire must be between {MIN_EXPIRE_SECONDS} and {MAX_EXPIRE_SECONDS} seconds",
                              field="expire")
    return expire


class AccesskeyService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], bus: EventPublisher) -> None:
        self._sessions = sessions
        self._bus = bus

    async def create_in(self, db: AsyncSession, customer_id: str, *, name: str = "", detail: str = "",
                        expire: Any = None) -> tuple[Accesskey, str]:
        """Add a key inside the caller's transaction; returns ``(row, plaintext token)``."""
        seconds = _check_expire(expire)
        token = TOKEN_PREFIX + secrets.token_urlsafe(24)
        key = Accesskey(
            customer_id=customer_id, name=name, detail=detail, token_hash=hash_token(token),
            token_prefix=token[:PREFIX_LEN], tm_expire=utcnow() + timedelta(seconds=seconds),
        )
        db.add(key)
        await db.flush()
        return key, token

    async def create(self, customer_id: str, *, name: str = "", detail: str = "",
                     expire: Any = None) -> tuple[Accesskey, str]:
        async with self._sessions() as db, db.begin():
            key, token = await self.create_in(db, customer_id, name=name, detail=detail, expire=expire)
        await self._publish(key, "accesskey_created")
        return key, token

    async def list(self, customer_id: str, page_size: int | None, page_token: str | None
                   ) -> tuple[Sequence[Accesskey], str]:
        async with self._sessions() as db:
            stmt = select(Accesskey).where(Accesskey.customer_id == customer_id, Accesskey.tm_delete.is_(None))
            return await paginate(db, stmt, Accesskey, page_size, page_token)

    async def get(self, customer_id: str, key_id: str) -> Accesskey:
        async with self._sessions() as db:
            return await self._owned(db, customer_id, key_id)

    async def update(self, customer_id: str, key_id: str, changes: dict[str, Any]) -> Accesskey:
        async with self._sessions() as db, db.begin():
            key = await self._owned(db, customer_id, key_id)
            for field in ("name", "detail"):
                if changes.get(field) is not None:  # null: unchanged (as PUT /customer)
                    setattr(key, field, changes[field])
            key.tm_update = utcnow()
        await self._publish(key, "accesskey_updated")
        return key

    async def delete(self, customer_id: str, key_id: str) -> Accesskey:
        async with self._sessions() as db, db.begin():
            key = await self._owned(db, customer_id, key_id)
            soft_delete(key)
        await self._publish(key, "accesskey_deleted")
        return key

    async def authenticate(self, token: str) -> Identity:
        """The identity of an ``?accesskey=`` value; raises Unauthenticated when unknown, deleted or expired."""
        async with self._sessions() as db:
            key = await db.scalar(select(Accesskey).where(Accesskey.token_hash == hash_token(token)))
        if key is None or key.tm_delete is not None:
            raise Unauthenticated("accesskey is invalid")
        if key.tm_expire <= utcnow():
            raise Unauthenticated("accesskey has expired")
        return Identity(customer_id=key.customer_id, permission=PERMISSION_CUSTOMER_ADMIN, kind="accesskey",
                        accesskey_id=key.id)

    @staticmethod
    async def _owned(db: AsyncSession, customer_id: str, key_id: str) -> Accesskey:
        return await owned(db, Accesskey, key_id, customer_id, what="accesskey")

    async def _publish(self, key: Accesskey, event_type: str) -> None:
        await self._bus.publish(Event(event_type, key.customer_id, "accesskey", key.id, serialize(key)))
