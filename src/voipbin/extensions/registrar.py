"""The registrar's ports implemented over the store: extension credentials and the location table.

``sip/`` defines :class:`~voipbin.sip.location.CredentialStore` and
:class:`~voipbin.sip.location.LocationService`; these implementations keep bindings in the
``sip_bindings`` table so that any process (another media pod) can find a registered softphone.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from voipbin.common.clock import new_id
from voipbin.extensions.service import ExtensionService
from voipbin.sip.location import Binding, Credential
from voipbin.sip.registrar import BindingChange
from voipbin.store.models import SipBinding


class ExtensionCredentials:
    """``CredentialStore``: the domain id is the customer id, the user the extension's ``extension``."""

    def __init__(self, extensions: ExtensionService) -> None:
        self._extensions = extensions

    async def lookup(self, domain_id: str, user: str) -> Credential | None:
        ext = await self._extensions.find(domain_id, extension=user)
        return None if ext is None else Credential(password=ext.password, owner_id=ext.id)


def _to_binding(row: SipBinding) -> Binding:
    return Binding(aor=row.aor, contact=row.contact, expires_at=row.expires_at,
                   received=(row.received_host, row.received_port), transport=row.transport,
                   call_id=row.call_id, cseq=row.cseq, user_agent=row.user_agent or None,
                   domain_id=row.customer_id, user=row.user, owner_id=row.extension_id,
                   q=float(row.q) if row.q else None)


class DatabaseLocationService:
    """``LocationService`` over the ``sip_bindings`` table (SQLite or PostgreSQL)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def save(self, binding: Binding) -> None:
        values: dict[str, Any] = {
            "aor": binding.aor, "contact": binding.contact, "customer_id": binding.domain_id,
            "extension_id": binding.owner_id, "user": binding.user, "received_host": binding.received[0],
            "received_port": binding.received[1], "transport": binding.transport, "call_id": binding.call_id,
            "cseq": binding.cseq, "user_agent": binding.user_agent or "",
            "q": "" if binding.q is None else str(binding.q), "expires_at": binding.expires_at,
        }
        async with self._sessions() as db, db.begin():
            dialect = db.bind.dialect.name  # type: ignore[union-attr]
            insert = pg_insert if dialect == "postgresql" else sqlite_insert
            stmt = insert(SipBinding).values(id=new_id(), **values)
            update = {k: v for k, v in values.items() if k not in ("aor", "contact")}
            await db.execute(stmt.on_conflict_do_update(index_elements=["aor", "contact"], set_=update))

    async def remove(self, aor: str, contact: str | None = None) -> list[Binding]:
        async with self._sessions() as db, db.begin():
            stmt = select(SipBinding).where(SipBinding.aor == aor)
            if contact is not None:
                stmt = stmt.where(SipBinding.contact == contact)
            rows = list((await db.scalars(stmt)).all())
            for row in rows:
                await db.delete(row)
        return [_to_binding(r) for r in rows]

    async def lookup(self, aor: str, now: float | None = None) -> list[Binding]:
        now = time.time() if now is None else now
        async with self._sessions() as db:
            rows = (await db.scalars(select(SipBinding).where(
                SipBinding.aor == aor, SipBinding.expires_at > now).order_by(SipBinding.tm_create))).all()
        return [_to_binding(r) for r in rows]

    async def expire(self, now: float | None = None) -> list[Binding]:
        now = time.time() if now is None else now
        async with self._sessions() as db, db.begin():
            rows = list((await db.scalars(select(SipBinding).where(SipBinding.expires_at <= now))).all())
            if rows:
                await db.execute(delete(SipBinding).where(SipBinding.id.in_([r.id for r in rows])))
        return [_to_binding(r) for r in rows]


class RegistrationEvents:
    """``on_binding_change`` hook: a registration change republishes the extension (``extension_updated``)."""

    def __init__(self, extensions: ExtensionService) -> None:
        self._extensions = extensions

    async def __call__(self, change: BindingChange) -> None:
        if change.event == "refreshed":
            return
        binding = change.binding
        if binding.owner_id and binding.domain_id:
            await self._extensions.registration_changed(binding.domain_id, binding.owner_id, change.event)
