"""Extension business rules: required fields, unique ``extension`` per customer, soft delete.

``username`` mirrors ``extension`` and ``domain_name`` is the customer id (the registrar
domain is ``<customer_id>.registrar.<sip_domain>``).
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from voipbin.common.clock import format_ts, utcnow
from voipbin.common.errors import AlreadyExists, InvalidArgument, NotFound
from voipbin.events.model import Event, EventPublisher
from voipbin.store.cache import ResourceCache
from voipbin.store.models import Extension, SipBinding
from voipbin.store.pagination import paginate
from voipbin.store.records import owned, soft_delete

REQUIRED = ("name", "detail", "extension", "password")
MIN_PASSWORD_CHARS = 8
MAY_BE_EMPTY = ("name", "detail")  # upstream requires them present; "" is accepted
# RFC 3261 user part, restricted to what softphones can type: letters, digits and - _ . ! ~ * ' ( )
EXTENSION_RE = re.compile(r"^[A-Za-z0-9\-_.!~*'()]{1,64}$")

T = TypeVar("T")


def serialize(e: Extension, contacts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The ``RegistrarManagerExtension`` shape, plus two documented additions when ``contacts`` is given:
    ``registered`` (bool: at least one unexpired binding) and ``contacts`` (the bindings:
    ``uri``, ``expires`` seconds left, ``transport``, ``source`` "ip:port", ``user_agent``)."""
    data = {
        "id": e.id, "customer_id": e.customer_id, "name": e.name, "detail": e.detail,
        "extension": e.extension, "username": e.extension, "password": e.password,
        "domain_name": e.customer_id, "direct_hash": e.direct_hash,
        "tm_create": format_ts(e.tm_create), "tm_update": format_ts(e.tm_update),
        "tm_delete": format_ts(e.tm_delete),
    }
    if contacts is not None:
        data["registered"] = bool(contacts)
        data["contacts"] = contacts
    return data


def event_view(data: dict[str, Any]) -> dict[str, Any]:
    """An extension as events carry it: without ``password`` (webhooks and WebSockets leave the
    process; only the API's own GET shows the SIP password, issue 13 finding 10)."""
    return {k: v for k, v in data.items() if k != "password"}


def _contact_view(b: SipBinding, now: float) -> dict[str, Any]:
    return {"uri": b.contact, "expires": max(0, int(b.expires_at - now)), "transport": b.transport,
            "source": f"{b.received_host}:{b.received_port}", "user_agent": b.user_agent}


def _string(body: dict[str, Any], field: str, *, required: bool) -> str | None:
    value = body.get(field)
    if value is None:
        if required:
            raise InvalidArgument(f"{field} is required", field=field)
        return None
    if not isinstance(value, str):
        raise InvalidArgument(f"{field} must be a string", field=field)
    if required and not value and field not in MAY_BE_EMPTY:
        raise InvalidArgument(f"{field} must not be empty", field=field)
    return value


def check_password(password: str) -> None:
    """A SIP password must resist online guessing (issue 13 finding 7): at least
    ``MIN_PASSWORD_CHARS`` characters and not digits only. InvalidArgument (400) naming ``password``."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise InvalidArgument(f"password must be at least {MIN_PASSWORD_CHARS} characters", field="password")
    if password.isdigit():
        raise InvalidArgument("password must not be digits only", field="password")


class ExtensionService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], bus: EventPublisher,
                 cache: ResourceCache | None = None) -> None:
        self._sessions = sessions
        self._bus = bus
        self._cache = cache or ResourceCache()
        self._loading: dict[tuple[str, str], asyncio.Future[Any]] = {}  # cache misses being read, by cache key

    async def create(self, customer_id: str, body: dict[str, Any]) -> Extension:
        """400 naming the first missing of name/detail/extension/password, or a weak password
        (:func:`check_password`); 409 if the extension exists."""
        values = {f: _string(body, f, required=True) for f in REQUIRED}
        if not EXTENSION_RE.match(values["extension"] or ""):
            raise InvalidArgument("extension may hold only letters, digits and -_.!~*'() (1-64 chars)",
                                  field="extension")
        check_password(values["password"] or "")
        row = Extension(customer_id=customer_id, direct_hash="direct." + secrets.token_hex(6), **values)
        try:
            async with self._sessions() as db, db.begin():
                await self._check_unique(db, customer_id, row.extension)
                db.add(row)
        except IntegrityError as exc:  # a concurrent create won the partial unique index
            raise AlreadyExists(f"extension {row.extension} already exists", field="extension") from exc
        await self._publish(row, "extension_created")
        return row

    async def list(self, customer_id: str, page_size: int | None, page_token: str | None
                   ) -> tuple[Sequence[Extension], str]:
        async with self._sessions() as db:
            stmt = select(Extension).where(Extension.customer_id == customer_id, Extension.tm_delete.is_(None))
            return await paginate(db, stmt, Extension, page_size, page_token)

    async def get(self, customer_id: str, extension_id: str) -> Extension:
        """The customer's extension; NotFound (-> 404) when unknown, deleted or another customer's."""
        row = await self._cached("extension", extension_id, lambda: self._load(extension_id))
        if row is None or row.customer_id != customer_id or row.tm_delete is not None:
            raise NotFound("extension not found")
        return row

    async def _load(self, extension_id: str) -> Extension | None:
        async with self._sessions() as db:
            return await db.get(Extension, extension_id)

    async def _cached(self, kind: str, key: str, load: Callable[[], Awaitable[T]]) -> T:
        """The cached ``(kind, key)``, else ``load()``'s result (cached unless None). Callers that miss
        while a load runs await that load: when an entry expires under load, one database read refills
        it instead of one per request in flight (issue 21: 64 concurrent GETs queued 128 reads on the
        pool and stalled the loop). A load that :meth:`_forget` superseded caches nothing."""
        hit: T | None = self._cache.get(kind, key)
        if hit is not None:
            return hit
        pending = self._loading.get((kind, key))
        if pending is None:
            pending = self._loading[kind, key] = asyncio.ensure_future(load())

            def loaded(done: asyncio.Future[Any]) -> None:
                if self._loading.get((kind, key)) is not done:
                    return  # forgotten while loading: the value may predate the change
                del self._loading[kind, key]
                if not done.cancelled() and done.exception() is None and done.result() is not None:
                    self._cache.put(kind, key, done.result())

            pending.add_done_callback(loaded)
        return await asyncio.shield(pending)  # type: ignore[no-any-return]

    def _forget(self, kind: str, key: str) -> None:
        self._cache.invalidate(kind, key)
        self._loading.pop((kind, key), None)

    async def view(self, customer_id: str, extension_id: str) -> dict[str, Any]:
        """``GET /extensions/{id}``: the extension with its registration (``registered``, ``contacts``)."""
        row = await self.get(customer_id, extension_id)
        contacts = await self._contacts([row.id])
        return serialize(row, contacts.get(row.id, []))

    async def views(self, rows: Sequence[Extension]) -> list[dict[str, Any]]:
        contacts = await self._contacts([r.id for r in rows])
        return [serialize(r, contacts.get(r.id, [])) for r in rows]

    async def _contacts(self, extension_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        now = time.time()
        out: dict[str, list[SipBinding]] = {}
        missing = []
        for ext_id in extension_ids:
            cached = self._cache.get("extension_contacts", ext_id)
            if cached is None:
                missing.append(ext_id)
            else:
                out[ext_id] = cached
        if len(missing) == 1:  # GET /extensions/{id}: one read however many requests miss together
            ext_id = missing[0]
            out[ext_id] = await self._cached("extension_contacts", ext_id, lambda: self._load_contacts(ext_id))
        elif missing:
            async with self._sessions() as db:
                rows = (await db.scalars(select(SipBinding).where(
                    SipBinding.extension_id.in_(missing)).order_by(SipBinding.tm_create))).all()
            for ext_id in missing:
                out[ext_id] = [b for b in rows if b.extension_id == ext_id]
                self._cache.put("extension_contacts", ext_id, out[ext_id])
        return {k: [_contact_view(b, now) for b in v if b.expires_at > now] for k, v in out.items()}

    async def _load_contacts(self, extension_id: str) -> list[SipBinding]:
        async with self._sessions() as db:
            return list((await db.scalars(select(SipBinding).where(
                SipBinding.extension_id == extension_id).order_by(SipBinding.tm_create))).all())

    def invalidate(self, extension_id: str) -> None:
        """Drop cached reads of one extension (driven by ``extension_*`` events from any process)."""
        self._forget("extension", extension_id)
        self._forget("extension_contacts", extension_id)

    async def registration_changed(self, customer_id: str, extension_id: str, change: str) -> None:
        """A softphone registered, unregistered or expired: republish the extension (``extension_updated``)."""
        self._forget("extension_contacts", extension_id)
        try:
            row = await self.get(customer_id, extension_id)
        except NotFound:
            return
        view = await self.view(customer_id, extension_id)
        await self._bus.publish(Event("extension_updated", row.customer_id, "extension", row.id, event_view(view)))

    async def find(self, customer_id: str, *, extension: str | None = None, name: str | None = None
                   ) -> Extension | None:
        """The customer's active extension by SIP user (``extension``) or by ``name``."""
        async with self._sessions() as db:
            stmt = select(Extension).where(Extension.customer_id == customer_id, Extension.tm_delete.is_(None))
            if extension is not None:
                stmt = stmt.where(Extension.extension == extension)
            if name is not None:
                stmt = stmt.where(Extension.name == name)
            return await db.scalar(stmt.order_by(Extension.tm_create.desc()).limit(1))

    async def update(self, customer_id: str, extension_id: str, body: dict[str, Any]) -> Extension:
        """Change name, detail and/or password (a weak password is a 400, see :func:`check_password`)."""
        changes = {f: v for f in ("name", "detail", "password")
                   if (v := _string(body, f, required=False)) is not None}
        if "password" in changes:
            check_password(changes["password"])
        async with self._sessions() as db, db.begin():
            row = await self._owned(db, customer_id, extension_id)
            for f, v in changes.items():
                setattr(row, f, v)
            row.tm_update = utcnow()
        await self._publish(row, "extension_updated")
        return row

    async def regenerate_direct_hash(self, customer_id: str, extension_id: str) -> Extension:
        """``POST /extensions/{id}/direct-hash-regenerate``: a new random ``direct_hash`` (the old one stops)."""
        async with self._sessions() as db, db.begin():
            row = await self._owned(db, customer_id, extension_id)
            row.direct_hash = "direct." + secrets.token_hex(6)
            row.tm_update = utcnow()
        await self._publish(row, "extension_updated")
        return row

    async def delete(self, customer_id: str, extension_id: str) -> Extension:
        async with self._sessions() as db, db.begin():
            row = await self._owned(db, customer_id, extension_id)
            soft_delete(row)
        await self._publish(row, "extension_deleted")
        return row

    @staticmethod
    async def _check_unique(db: AsyncSession, customer_id: str, extension: str) -> None:
        taken = await db.scalar(select(Extension.id).where(
            Extension.customer_id == customer_id, Extension.extension == extension, Extension.tm_delete.is_(None)))
        if taken is not None:
            raise AlreadyExists(f"extension {extension} already exists", field="extension")

    @staticmethod
    async def _owned(db: AsyncSession, customer_id: str, extension_id: str) -> Extension:
        return await owned(db, Extension, extension_id, customer_id, what="extension")

    async def _publish(self, row: Extension, event_type: str) -> None:
        self._forget("extension", row.id)
        await self._bus.publish(Event(event_type, row.customer_id, "extension", row.id, event_view(serialize(row))))
