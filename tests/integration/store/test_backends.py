"""The same service operations on SQLite and on the local PostgreSQL (scale-out path)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import inspect

from voipbin.common.errors import AlreadyExists, InvalidArgument, NotFound
from voipbin.config import Settings
from voipbin.runtime import Runtime


@pytest.fixture
async def rt(db_url: str):  # type: ignore[no-untyped-def]
    runtime = Runtime(Settings(database_url=db_url, sip_enabled=False, _env_file=None))  # type: ignore[call-arg]
    await runtime.start()
    runtime.seed = await runtime.seed_sandbox()
    yield runtime
    await runtime.stop()


async def test_migrations_create_every_table(rt: Runtime) -> None:
    async with rt.engine.connect() as conn:
        tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    assert {"customers", "agents", "accesskeys", "signups", "numbers", "extensions", "alembic_version"} <= tables


async def test_extension_crud_and_uniqueness(rt: Runtime) -> None:
    cid = rt.seed.customer_id  # type: ignore[attr-defined]
    ext = await rt.extensions.create(cid, {"name": "n", "detail": "d", "extension": "1001", "password": "phone-pass-1"})
    with pytest.raises(AlreadyExists):
        await rt.extensions.create(cid, {"name": "n2", "detail": "d", "extension": "1001", "password": "phone-pass-1"})
    assert (await rt.extensions.find(cid, extension="1001")).id == ext.id  # type: ignore[union-attr]
    assert (await rt.extensions.find(cid, name="n")).id == ext.id  # type: ignore[union-attr]
    await rt.extensions.delete(cid, ext.id)
    with pytest.raises(NotFound):
        await rt.extensions.get(cid, ext.id)
    with pytest.raises(InvalidArgument, match="detail is required"):
        await rt.extensions.create(cid, {"name": "n", "extension": "1002", "password": "phone-pass-1"})


async def test_pagination_is_stable_across_backends(rt: Runtime) -> None:
    cid = rt.seed.customer_id  # type: ignore[attr-defined]
    for i in range(7):
        await rt.extensions.create(cid, {"name": f"n{i}", "detail": "d", "extension": f"x{i}", "password": "phone-pass-1"})
    seen: list[str] = []
    token: str | None = None
    while True:
        items, token = await rt.extensions.list(cid, 3, token)
        seen += [e.name for e in items]
        if not token:
            break
    assert seen == [f"n{i}" for i in reversed(range(7))]


async def test_a_number_has_one_owner_even_under_concurrency(rt: Runtime) -> None:
    cid = rt.seed.customer_id  # type: ignore[attr-defined]
    results = await asyncio.gather(*(rt.numbers.create(cid, {"number": "+15557654321"}) for _ in range(4)),
                                   return_exceptions=True)
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert all(isinstance(r, AlreadyExists) for r in results if isinstance(r, Exception))
    items, _ = await rt.numbers.list(cid, 100, None)
    assert [n.number for n in items].count("+15557654321") == 1
    with pytest.raises(AlreadyExists):
        await rt.numbers.create(cid, {"number": "+15557654321"})
