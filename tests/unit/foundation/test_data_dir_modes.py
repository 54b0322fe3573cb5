"""Issue 13 finding 10: the data dir is created 0700 and the SQLite file (with its WAL) 0600."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sqlalchemy import text

from voipbin.store.db import make_engine, secure_sqlite_file
from voipbin.store.migrate import upgrade_async


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_new_database_and_its_folder_are_private(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'var' / 'voipbin.db'}"
    old = os.umask(0o022)  # the usual umask: without care the file would be 0644
    try:
        secure_sqlite_file(url)
        await upgrade_async(url)
        engine = make_engine(url)
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (x INTEGER)"))
            await conn.execute(text("INSERT INTO t VALUES (1)"))
            assert _mode(tmp_path / "var" / "voipbin.db-wal") == 0o600
        await engine.dispose()
    finally:
        os.umask(old)
    assert _mode(tmp_path / "var") == 0o700
    assert _mode(tmp_path / "var" / "voipbin.db") == 0o600


def test_an_existing_world_readable_database_is_made_private(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    db.write_bytes(b"")
    db.chmod(0o644)
    secure_sqlite_file(f"sqlite+aiosqlite:///{db}")
    assert _mode(db) == 0o600


def test_other_databases_are_left_alone() -> None:
    secure_sqlite_file("postgresql+asyncpg://u@127.0.0.1/db")
    secure_sqlite_file("sqlite+aiosqlite:///:memory:")
