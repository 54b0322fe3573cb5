"""Speaking/transcribe fixtures: scripted legs (no SIP) with real RTP on 127.0.0.1, real piper and whisper.

``live_call`` is an answered call running a long ``sleep``: its ``leg.phone`` is the endpoint's
RTP session (feed ``leg.phone.outbound`` to make the phone speak) and ``ear`` records what the
phone receives, frame by frame, with the arrival time of each frame.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from st_support import Events, LiveCall, start_call
from tests_support.fake_legs import FakeOriginator, register
from voipbin.config import Settings
from voipbin.events.bus import event_queue


@pytest.fixture
def originator() -> FakeOriginator:
    return FakeOriginator()


@pytest.fixture
def settings(sqlite_url: str) -> Settings:
    return Settings(database_url=sqlite_url, webhook_allow_private=True, sip_port=0,  # type: ignore[call-arg]
                    call_ring_timeout_seconds=30, rtp_timeout_seconds=60, webhook_worker=False,
                    pod_id="pod-test-1", _env_file=None)


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
    yield Events(queue, timeout=30)
    await sub.unsubscribe()


@pytest_asyncio.fixture
async def phone(client: httpx.AsyncClient, admin_token: str, runtime: Any) -> dict[str, Any]:
    r = await client.post("/v1.0/extensions", params={"token": admin_token}, json={
        "name": "quickstart-phone", "detail": "Quickstart softphone extension",
        "extension": "quickstart1", "password": "your-secure-password-here"})
    ext = r.json()
    await register(runtime, ext, "sip:quickstart1@127.0.0.1:35060", ("127.0.0.1", 35060))
    return ext


@pytest_asyncio.fixture
async def live_call(client: httpx.AsyncClient, admin_token: str, runtime: Any, originator: FakeOriginator,
                    events: Events, phone: dict[str, Any]) -> LiveCall:
    return await start_call(client, admin_token, runtime, originator, events)


@pytest_asyncio.fixture
async def other_token(client: httpx.AsyncClient, runtime: Any) -> str:
    """A token of a second customer (for 404 on foreign resources)."""
    from voipbin.auth.identity import PERMISSION_CUSTOMER_ADMIN

    async with runtime.sessions() as session, session.begin():
        customer = await runtime.customers.create(session, email="other@example.test", name="Other",
                                                  email_verified=True)
        await runtime.login.add_agent(session, customer_id=customer.id, username="other@example.test",
                                      password="other-password", permission=PERMISSION_CUSTOMER_ADMIN)
    r = await client.post("/auth/login", json={"username": "other@example.test", "password": "other-password"})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])
