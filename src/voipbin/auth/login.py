"""``POST /auth/login``: username + password of an agent → 7-day JWT."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from voipbin.auth.passwords import hash_password, verify_password
from voipbin.auth.tokens import TokenIssuer
from voipbin.common.errors import InvalidArgument, Unauthenticated
from voipbin.store.models import Agent

# Verifying against a real hash when the username is unknown keeps the timing the same
# for unknown users and wrong passwords (no enumeration by response time).
_DUMMY_HASH = hash_password("voipbin-dummy-password")


class LoginService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], tokens: TokenIssuer) -> None:
        self._sessions = sessions
        self._tokens = tokens

    async def login(self, username: str, password: str) -> str:
        """A JWT for the agent; raises InvalidArgument for empty fields, Unauthenticated otherwise."""
        if not username:
            raise InvalidArgument("username is required", field="username")
        if not password:
            raise InvalidArgument("password is required", field="password")
        async with self._sessions() as session:
            agent = await session.scalar(
                select(Agent).where(Agent.username == username, Agent.tm_delete.is_(None)))
        if agent is None:
            verify_password(_DUMMY_HASH, password)
            raise Unauthenticated("wrong username or password")
        if not verify_password(agent.password_hash, password):
            raise Unauthenticated("wrong username or password")
        return self._tokens.issue(agent_id=agent.id, customer_id=agent.customer_id,
                                  permission=agent.permission, username=agent.username)

    @staticmethod
    async def add_agent(session: AsyncSession, *, customer_id: str, username: str, password: str,
                        permission: int, name: str = "") -> Agent:
        """Add a login inside the caller's transaction."""
        agent = Agent(customer_id=customer_id, username=username, password_hash=hash_password(password),
                      permission=permission, name=name)
        session.add(agent)
        await session.flush()
        return agent
