"""Fixtures shared by every test: settings on a temporary database, the Runtime, an API client.

The database backend is SQLite unless a test asks for ``db_url`` parametrized with postgres
(see ``tests/integration/store``). PostgreSQL runs on 127.0.0.1:5432 on the development
machines and in CI (scripts/ensure-services.sh).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from tests_support.net import ADMIN_PASSWORD, ADMIN_USERNAME
from tests_support.postgres import create_database, drop_database
from voipbin.config import Settings
from voipbin.store.migrate import upgrade

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
SPEC_PATH = SHARED / "spec" / "voipbin-openapi" / "openapi.yaml"



@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'voipbin.db'}"
    upgrade(url)
    return url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database, dropped after the test."""
    name, url = asyncio.run(create_database("voipbin_test"))
    try:
        upgrade(url)
        yield url
    finally:
        asyncio.run(drop_database(name))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """The database URL, once per backend: tests using it run on SQLite and on PostgreSQL."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
def settings(sqlite_url: str) -> Settings:
    return Settings(database_url=sqlite_url, webhook_allow_private=True, sip_port=0,  # type: ignore[call-arg]
                    _env_file=None)


@pytest_asyncio.fixture
async def runtime(settings: Settings) -> AsyncIterator[object]:
    from voipbin.runtime import Runtime

    rt = Runtime(settings)
    await rt.start()
    rt.seed = await rt.seed_sandbox()  # type: ignore[attr-defined]
    try:
        yield rt
    finally:
        await rt.stop()


@pytest_asyncio.fixture
async def client(runtime: object) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client speaking to the ASGI app in-process."""
    from voipbin.api.app import create_app

    app = create_app(runtime)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as c:
        yield c


@pytest_asyncio.fixture
async def admin_token(client: httpx.AsyncClient) -> str:
    r = await client.post("/auth/login", json={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


@pytest.fixture(scope="session")
def spec() -> object:
    """Validator for the upstream OpenAPI schemas (``spec.validate("RegistrarManagerExtension", body)``)."""
    from tests_support.spec import SpecValidator

    return SpecValidator(SPEC_PATH)
