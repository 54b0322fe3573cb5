"""``POST /auth/login``: username + password of an agent → 7-day JWT.

Guessing is bounded (issue 13, finding 6): failed logins per username and attempts per source
address are limited (429 + ``Retry-After``), and argon2 runs in the hashing thread pool, never on
the event loop.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from voipbin.auth.limits import RateLimiter
from voipbin.auth.passwords import hash_password, hash_password_async, verify_password_async
from voipbin.auth.tokens import TokenIssuer
from voipbin.common.errors import InvalidArgument, Unauthenticated
from voipbin.store.models import Agent

# Verifying against a real hash when the username is unknown keeps the timing the same
# for unknown users and wrong passwords (no enumeration by response time).
_DUMMY_HASH = hash_password("voipbin-dummy-password")
_UNLIMITED = 1 << 62


class LoginService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], tokens: TokenIssuer, *,
                 per_username: int = _UNLIMITED, per_source: int = _UNLIMITED, window_seconds: float = 300.0) -> None:
        self._sessions = sessions
        self._tokens = tokens
        self._failures = RateLimiter(per_username, window_seconds, what="failed logins for this username")
        self._attempts = RateLimiter(per_source, window_seconds, what="login attempts from this address")

    async def login(self, username: str, password: str, *, source: str = "") -> str:
        """A JWT for the agent.

        Raises InvalidArgument for empty fields, ResourceExhausted (429) when ``username`` has too many
        recent failures or ``source`` (the client address) too many attempts, Unauthenticated otherwise.
        """
        if not username:
            raise InvalidArgument("username is required", field="username")
        if not password:
            raise InvalidArgument("password is required", field="password")
        key = username.lower()
        self._failures.check(key)
        self._attempts.check_and_hit(source)
        async with self._sessions() as db:
            agent = await db.scalar(
                select(Agent).where(Agent.username == username, Agent.tm_delete.is_(None)))
        ok = await verify_password_async(agent.password_hash if agent else _DUMMY_HASH, password)
        if agent is None or not ok:
            self._failures.hit(key)
            raise Unauthenticated("wrong username or password")
        return self._tokens.issue(agent_id=agent.id, customer_id=agent.customer_id,
                                  permission=agent.permission, username=agent.username)

    @staticmethod
    async def add_agent(db: AsyncSession, *, customer_id: str, username: str, password: str,
                        permission: int, name: str = "") -> Agent:
        """Add a login inside the caller's transaction."""
        agent = Agent(customer_id=customer_id, username=username, password_hash=await hash_password_async(password),
                      permission=permission, name=name)
        db.add(agent)
        await db.flush()
        return agent
