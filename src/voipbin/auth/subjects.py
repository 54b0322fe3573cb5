"""The subject of a login JWT checked against the store on every request (issue 13, finding 1).

A signature only proves the token was issued with our secret; the agent it names must still exist,
be undeleted and belong to a live customer. The answer is cached per agent for
``ttl_seconds`` (a dict lookup on the hot path) and dropped at once on ``invalidate`` (agent or
customer events, see ``Runtime.start``); the TTL bounds staleness for out-of-band database edits.
Requests that miss together (an expiry under load) share one read.
"""

from __future__ import annotations

import asyncio

from cachetools import TTLCache
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from voipbin.auth.identity import Identity
from voipbin.common.errors import Unauthenticated
from voipbin.store.models import Agent, Customer

ACTIVE_CUSTOMER_STATUS = "active"


class AgentDirectory:
    """Resolves a verified token identity to the agent's current state in the store."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, ttl_seconds: float = 10.0,
                 max_entries: int = 10_000) -> None:
        self._sessions = sessions
        # agent id -> (customer id, permission) of a live agent
        self._live: TTLCache[str, tuple[str, int]] = TTLCache(maxsize=max_entries, ttl=ttl_seconds)
        self._loading: dict[str, asyncio.Future[tuple[str, int]]] = {}  # misses being read, by agent id

    async def check(self, identity: Identity) -> Identity:
        """``identity`` with the agent's current permission; raises Unauthenticated (401) when the agent
        is unknown or deleted, its customer is deleted or not active, or the token names another customer."""
        agent_id = identity.agent_id or ""
        live = self._live.get(agent_id)
        if live is None:
            live = await self._load_once(agent_id)
        customer_id, permission = live
        if customer_id != identity.customer_id:
            raise Unauthenticated("token is invalid")
        if permission == identity.permission:
            return identity
        return Identity(customer_id=customer_id, permission=permission, kind=identity.kind, agent_id=agent_id)

    def invalidate(self, agent_id: str | None = None) -> None:
        """Forget one agent (or every agent when ``agent_id`` is None, e.g. a customer changed)."""
        if agent_id is None:
            self._live.clear()
            self._loading.clear()
        else:
            self._live.pop(agent_id, None)
            self._loading.pop(agent_id, None)

    async def _load_once(self, agent_id: str) -> tuple[str, int]:
        """:meth:`_load`, shared by every request that misses while it runs (one read per expiry, not one
        per request in flight, issue 21); cached unless :meth:`invalidate` forgot it meanwhile."""
        pending = self._loading.get(agent_id)
        if pending is None:
            pending = self._loading[agent_id] = asyncio.ensure_future(self._load(agent_id))

            def loaded(done: asyncio.Future[tuple[str, int]]) -> None:
                if self._loading.get(agent_id) is not done:
                    return  # invalidated while loading: the answer may predate the change
                del self._loading[agent_id]
                if not done.cancelled() and done.exception() is None:
                    self._live[agent_id] = done.result()

            pending.add_done_callback(loaded)
        return await asyncio.shield(pending)

    async def _load(self, agent_id: str) -> tuple[str, int]:
        async with self._sessions() as db:
            agent = await db.get(Agent, agent_id) if agent_id else None
            customer = await db.get(Customer, agent.customer_id) if agent is not None else None
        if agent is None or agent.tm_delete is not None or customer is None or customer.tm_delete is not None \
                or customer.status != ACTIVE_CUSTOMER_STATUS:
            raise Unauthenticated("token is invalid: its agent no longer exists or is disabled")
        return agent.customer_id, agent.permission
