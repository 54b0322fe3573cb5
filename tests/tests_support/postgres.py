"""Throw-away PostgreSQL databases on the local server (tests' ``postgres_url`` fixture, the cluster benches).

``VOIPBIN_TEST_PG_DSN`` names the admin connection (default: the machine's trust-auth ``postgres`` user).
"""

from __future__ import annotations

import os
import uuid

import asyncpg

PG_ADMIN_DSN = os.environ.get("VOIPBIN_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


async def create_database(prefix: str) -> tuple[str, str]:
    """Create an empty database ``<prefix>_<random hex>``; returns its name and SQLAlchemy asyncpg URL
    (not migrated: the caller runs ``voipbin.store.migrate.upgrade`` on it)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return name, f"{base}/{name}"


async def drop_database(name: str) -> None:
    """Drop database ``name`` (its connections closed by force); nothing if it is gone."""
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
