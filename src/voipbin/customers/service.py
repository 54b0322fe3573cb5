"""Customer business rules: creation (signup, sandbox), read, webhook settings and secret, metadata;
the caller's own agent (``GET /v1.0/me``)."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from voipbin.auth.identity import PERMISSION_CUSTOMER_ADMIN, Identity
from voipbin.common.clock import format_ts, utcnow
from voipbin.common.errors import InvalidArgument, NotFound
from voipbin.events.model import Event, EventPublisher
from voipbin.store.models import Accesskey, Agent, Customer

WEBHOOK_METHODS = ("", "POST", "GET", "PUT", "DELETE")


def serialize(c: Customer, *, include_secret: bool = False) -> dict[str, Any]:
    """The ``CustomerManagerCustomer`` shape. ``webhook_secret`` only when it was just created or rotated."""
    data: dict[str, Any] = {
        "id": c.id,
        "name": c.name,
        "detail": c.detail,
        "email": c.email,
        "phone_number": c.phone_number,
        "address": c.address,
        "webhook_method": c.webhook_method,
        "webhook_uri": c.webhook_uri,
        "billing_account_id": "00000000-0000-0000-0000-000000000000",  # no billing here
        "metadata": {"rtp_debug": bool((c.meta or {}).get("rtp_debug", False))},
        "email_verified": c.email_verified,
        "status": c.status,
        "identity_verification_status": c.identity_verification_status,
        "tm_deletion_scheduled": None,
        "tm_create": format_ts(c.tm_create),
        "tm_update": format_ts(c.tm_update),
        "tm_delete": format_ts(c.tm_delete),
    }
    if include_secret:
        data["webhook_secret"] = c.webhook_secret
    return data


def validate_webhook(method: str | None, uri: str | None) -> None:
    """Raises InvalidArgument naming ``webhook_method`` or ``webhook_uri``."""
    if method is not None and method not in WEBHOOK_METHODS:
        raise InvalidArgument(
            f"webhook_method must be one of POST, GET, PUT, DELETE or empty, not {method!r}",
            field="webhook_method",
        )
    if uri and not (uri.startswith("http://") or uri.startswith("https://")):
        raise InvalidArgument("webhook_uri must be an http:// or https:// URL", field="webhook_uri")


class CustomerService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], bus: EventPublisher) -> None:
        self._sessions = sessions
        self._bus = bus

    async def create(self, db: AsyncSession, *, email: str, name: str = "", detail: str = "",
                     phone_number: str = "", address: str = "", webhook_method: str = "",
                     webhook_uri: str = "", email_verified: bool = False) -> Customer:
        """Add a customer inside the caller's transaction (the caller commits and publishes)."""
        validate_webhook(webhook_method, webhook_uri)
        customer = Customer(
            email=email.lower(), name=name, detail=detail, phone_number=phone_number, address=address,
            webhook_method=webhook_method or ("POST" if webhook_uri else ""), webhook_uri=webhook_uri,
            webhook_secret=secrets.token_hex(32), email_verified=email_verified, meta={},
        )
        db.add(customer)
        await db.flush()
        return customer

    async def get(self, customer_id: str) -> Customer:
        async with self._sessions() as db:
            return await self._own(db, customer_id)

    async def find_by_email(self, db: AsyncSession, email: str) -> Customer | None:
        return await db.scalar(select(Customer).where(Customer.email == email.lower()))

    async def update(self, customer_id: str, changes: dict[str, Any]) -> Customer:
        """Apply the given fields (name, detail, email, phone_number, address, webhook_method, webhook_uri);
        a field given as null is left as it is."""
        changes = {key: value for key, value in changes.items() if value is not None}
        validate_webhook(changes.get("webhook_method"), changes.get("webhook_uri"))
        async with self._sessions() as db, db.begin():
            customer = await self._own(db, customer_id)
            for key, value in changes.items():
                setattr(customer, key, value)
            if customer.webhook_uri and not customer.webhook_method:
                customer.webhook_method = "POST"
            customer.tm_update = utcnow()
        await self.publish(customer, "customer_updated")
        return customer

    async def update_metadata(self, customer_id: str, metadata: dict[str, Any]) -> Customer:
        """``PUT /customer/metadata``: ``rtp_debug`` (bool; 400 naming it otherwise). Other keys are ignored."""
        flag = metadata.get("rtp_debug", False)
        if not isinstance(flag, bool):
            raise InvalidArgument("rtp_debug must be a boolean", field="rtp_debug")
        async with self._sessions() as db, db.begin():
            customer = await self._own(db, customer_id)
            customer.meta = {**(customer.meta or {}), "rtp_debug": flag}
            customer.tm_update = utcnow()
        await self.publish(customer, "customer_updated")
        return customer

    async def rotate_webhook_secret(self, customer_id: str) -> Customer:
        """A new random ``webhook_secret`` (64 hex digits); deliveries claimed from now on are signed with it.

        No event is published: the secret is never part of an event and nothing else changes.
        """
        async with self._sessions() as db, db.begin():
            customer = await self._own(db, customer_id)
            customer.webhook_secret = secrets.token_hex(32)
        return customer

    async def me(self, identity: Identity) -> dict[str, Any]:
        """The caller as an ``AgentManagerAgent``: its agent, or for an accesskey the key acting as an
        admin agent of its customer (``id`` the accesskey id, ``username`` empty). 401 is the caller's job;
        a deleted agent or key is 404."""
        async with self._sessions() as db:
            if identity.kind == "accesskey":
                key = await db.get(Accesskey, identity.accesskey_id or "")
                if key is None or key.tm_delete is not None or key.customer_id != identity.customer_id:
                    raise NotFound("accesskey not found")
                return _agent_view(key.id, key.customer_id, "", key.name, key.detail, PERMISSION_CUSTOMER_ADMIN,
                                   key)
            agent = await db.get(Agent, identity.agent_id or "")
            if agent is None or agent.tm_delete is not None or agent.customer_id != identity.customer_id:
                raise NotFound("agent not found")
            return _agent_view(agent.id, agent.customer_id, agent.username, agent.name, "", agent.permission, agent)

    @staticmethod
    async def _own(db: AsyncSession, customer_id: str) -> Customer:
        customer = await db.get(Customer, customer_id)
        if customer is None or customer.tm_delete is not None:
            raise NotFound("customer not found")
        return customer

    async def publish(self, customer: Customer, event_type: str) -> None:
        await self._bus.publish(Event(event_type, customer.id, "customer", customer.id, serialize(customer)))


def _agent_view(agent_id: str, customer_id: str, username: str, name: str, detail: str, permission: int,
                row: Agent | Accesskey) -> dict[str, Any]:
    return {
        "id": agent_id, "customer_id": customer_id, "username": username, "name": name, "detail": detail,
        "ring_method": "ringall", "status": "available", "permission": permission, "tag_ids": [], "addresses": [],
        "direct_hash": "", "tm_create": format_ts(row.tm_create), "tm_update": format_ts(row.tm_update),
        "tm_delete": format_ts(row.tm_delete),
    }
