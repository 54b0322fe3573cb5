"""Call-control fixtures: a Runtime whose originator is scripted (no SIP), events as a queue."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests_support.events import Events
from tests_support.fake_legs import FakeOriginator, register
from voipbin.config import Settings
from voipbin.events.bus import event_queue


@pytest.fixture
def originator() -> FakeOriginator:
    return FakeOriginator()


@pytest.fixture
def settings(sqlite_url: str) -> Settings:
    return Settings(database_url=sqlite_url, webhook_allow_private=True, sip_port=0,  # type: ignore[call-arg]
                    call_ring_timeout_seconds=30, rtp_timeout_seconds=30, webhook_worker=False, _env_file=None)


@pytest_asyncio.fixture
async def runtime(settings: Settings, originator: FakeOriginator) -> AsyncIterator[Any]:
    from voipbin.runtime import Runtime

    rt = Runtime(settings, originator=originator)
    await rt.start()
    rt.seed = await rt.seed_sandbox()
    try:
        yield rt
    finally:
        await rt.stop()


@pytest_asyncio.fixture
async def events(runtime: Any) -> AsyncIterator[Events]:
    queue, sub = await event_queue(runtime.bus, f"customer_id:{runtime.seed.customer_id}")
    yield Events(queue, timeout=15)
    await sub.unsubscribe()


@pytest_asyncio.fixture
async def phone(client: httpx.AsyncClient, admin_token: str, runtime: Any) -> dict[str, Any]:
    """The seed 003 extension with one registered contact (written to the location table)."""
    r = await client.post("/v1.0/extensions", params={"token": admin_token}, json={
        "name": "quickstart-phone", "detail": "Quickstart softphone extension",
        "extension": "quickstart1", "password": "your-secure-password-here"})
    ext = r.json()
    await register(runtime, ext, "sip:quickstart1@127.0.0.1:35060", ("127.0.0.1", 35060))
    return ext
