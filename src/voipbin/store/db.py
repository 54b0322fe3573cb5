"""The async engine and session factory for ``Settings.database_url``."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


SQLITE_PREFIX = "sqlite+aiosqlite:///"
DATA_DIR_MODE = 0o700
DATABASE_FILE_MODE = 0o600


def secure_sqlite_file(url: str) -> None:
    """Create a SQLite URL's folder 0700 and its file 0600 (an existing file is set to 0600), before
    anything opens it: the file holds password hashes, SIP passwords and webhook secrets (issue 13,
    finding 10). SQLite gives its -wal and -shm files the database file's mode. No-op for other URLs."""
    if not url.startswith(SQLITE_PREFIX):
        return
    name = url.removeprefix(SQLITE_PREFIX).split("?", 1)[0]
    if not name or name == ":memory:":
        return
    path = Path(name)
    if not path.parent.exists():
        path.parent.mkdir(mode=DATA_DIR_MODE, parents=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, DATABASE_FILE_MODE))
    if stat.S_IMODE(path.stat().st_mode) != DATABASE_FILE_MODE:
        os.chmod(path, DATABASE_FILE_MODE)


def make_engine(url: str) -> AsyncEngine:
    """An AsyncEngine for a SQLite (aiosqlite) or PostgreSQL (asyncpg) URL.

    SQLite gets WAL mode and foreign keys on, so concurrent readers do not block the writer, and its
    file is private (:func:`secure_sqlite_file`).
    """
    if url.startswith("sqlite"):
        secure_sqlite_file(url)
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
