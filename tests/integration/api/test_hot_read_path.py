"""The per-request path of a cached read (issue 21): no dependency hops to the thread pool, requests
that miss a cache together share one database read, and the one request middleware keeps the
``X-Request-Id`` and body-limit behaviour."""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.routing import BaseRoute

from voipbin.api.app import create_app
from voipbin.auth.subjects import AgentDirectory
from voipbin.common.errors import Unauthenticated
from voipbin.extensions.service import ExtensionService
from voipbin.store.models import Extension

EXTENSION = {"name": "a", "detail": "b", "extension": "hot1", "password": "strong-pass-1"}


class CountingSessions:
    """A session factory that counts the sessions opened; with ``hold`` closed, a session's reads are
    done but it is not released (``read`` is set) until ``hold`` opens."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self.opened = 0
        self.read = asyncio.Event()
        self.hold = asyncio.Event()
        self.hold.set()

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[AsyncSession]:
        self.opened += 1
        async with self.sessions() as db:
            yield db
            self.read.set()
            await self.hold.wait()


class NoBus:
    async def publish(self, event: Any, *, session: AsyncSession | None = None) -> None:
        return None


def _api_routes(routes: list[BaseRoute]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _api_routes(inner.routes)


def test_no_request_dependency_runs_in_the_thread_pool(runtime: Any) -> None:
    """FastAPI runs a plain ``def`` dependency in the thread pool on every request: all are ``async def``."""
    app = create_app(runtime)
    sync = set()
    for route in _api_routes(app.routes):
        stack = list(route.dependant.dependencies)
        while stack:
            dependency = stack.pop()
            if not inspect.iscoroutinefunction(dependency.call):
                sync.add(f"{route.path}: {getattr(dependency.call, '__qualname__', dependency.call)}")
            stack.extend(dependency.dependencies)
    assert not sync, sorted(sync)


async def test_concurrent_misses_of_one_extension_share_one_read(runtime: Any) -> None:
    sessions = CountingSessions(runtime.sessions)
    service = ExtensionService(sessions, NoBus())  # type: ignore[arg-type]
    customer_id = runtime.seed.customer_id
    ext = await service.create(customer_id, dict(EXTENSION))
    opened = sessions.opened

    views = await asyncio.gather(*(service.view(customer_id, ext.id) for _ in range(20)))

    assert sessions.opened - opened == 2  # the extension, then its bindings: once each for 20 requests
    assert {v["id"] for v in views} == {ext.id} and all(v["contacts"] == [] for v in views)
    await service.view(customer_id, ext.id)
    assert sessions.opened - opened == 2  # cached


async def test_an_extension_read_forgotten_while_loading_is_not_cached(runtime: Any) -> None:
    """An ``extension_updated`` arriving while a miss is being read: later requests read again, and the
    older read does not refill the cache with the value from before the change."""
    sessions = CountingSessions(runtime.sessions)
    service = ExtensionService(sessions, NoBus())  # type: ignore[arg-type]
    customer_id = runtime.seed.customer_id
    ext = await service.create(customer_id, dict(EXTENSION))
    sessions.read.clear()
    sessions.hold.clear()
    before = asyncio.create_task(service.get(customer_id, ext.id))
    await sessions.read.wait()  # it has read the row as it was
    async with runtime.sessions() as db, db.begin():
        await db.execute(update(Extension).where(Extension.id == ext.id).values(name="renamed"))
    service.invalidate(ext.id)  # what the extension_updated event does
    after = asyncio.create_task(service.get(customer_id, ext.id))
    sessions.hold.set()

    assert (await before).name == "a"
    assert (await after).name == "renamed"
    opened = sessions.opened
    assert (await service.get(customer_id, ext.id)).name == "renamed"
    assert sessions.opened == opened  # the newer read is the one cached


async def test_concurrent_misses_of_one_agent_share_one_read(runtime: Any, admin_token: str) -> None:
    sessions = CountingSessions(runtime.sessions)
    agents = AgentDirectory(sessions)  # type: ignore[arg-type]
    identity = runtime.tokens.verify(admin_token)

    checked = await asyncio.gather(*(agents.check(identity) for _ in range(20)))

    assert sessions.opened == 1 and set(checked) == {identity}
    await agents.check(identity)
    assert sessions.opened == 1


async def test_a_failed_agent_read_fails_every_waiter_and_is_not_cached(runtime: Any, admin_token: str) -> None:
    sessions = CountingSessions(runtime.sessions)
    agents = AgentDirectory(sessions)  # type: ignore[arg-type]
    identity = runtime.tokens.verify(admin_token)
    unknown = type(identity)(customer_id=identity.customer_id, permission=identity.permission, kind="token",
                             agent_id=str(uuid.uuid4()))

    results = await asyncio.gather(*(agents.check(unknown) for _ in range(5)), return_exceptions=True)

    assert sessions.opened == 1 and all(isinstance(r, Unauthenticated) for r in results)
    with pytest.raises(Unauthenticated):
        await agents.check(unknown)
    assert sessions.opened == 2


async def test_a_request_id_is_assigned_or_truncated(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1.0/customer")
    assert r.status_code == 401
    assert r.headers["x-request-id"] == r.json()["error"]["request_id"]
    assert uuid.UUID(r.headers["x-request-id"]).version == 4
    r = await client.get("/v1.0/customer", headers={"X-Request-Id": "x" * 300})
    assert r.headers["x-request-id"] == "x" * 128 == r.json()["error"]["request_id"]


async def test_a_413_carries_the_request_id(client: httpx.AsyncClient, runtime: Any) -> None:
    body = b"{" + b" " * runtime.settings.http_max_body_bytes + b"}"
    r = await client.post("/auth/login", content=body, headers={"X-Request-Id": "req-big"})
    assert r.status_code == 413
    assert r.headers["x-request-id"] == "req-big" == r.json()["error"]["request_id"]

