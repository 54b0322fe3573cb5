"""Issue 13 findings 1 and 6 as attacks on loopback: forged and orphaned tokens, password guessing,
argon2 stalling the event loop; issue 12 item 8: the auth path aliases."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import jwt
import pytest
from sqlalchemy import update

from tests_support.net import ADMIN_PASSWORD, ADMIN_USERNAME
from voipbin.auth.identity import PERMISSION_ALL, PERMISSION_CUSTOMER_ADMIN, PERMISSION_CUSTOMER_AGENT
from voipbin.auth.jwt_secret import INSECURE_DEFAULT_JWT_SECRET
from voipbin.auth.login import LoginService
from voipbin.config import Settings
from voipbin.events.model import Event
from voipbin.store.models import Agent, Customer

STRONG_SECRET = "k" * 24 + "-strong-test-secret-48-bytes-long"


def _forge(secret: str, *, sub: str, customer_id: str) -> str:
    """The attack of finding 1: any customer, every permission, ten years."""
    return jwt.encode({"sub": sub, "customer_id": customer_id, "permission": PERMISSION_ALL,
                       "username": "attacker", "iat": int(time.time()), "exp": int(time.time()) + 10 * 365 * 86400},
                      secret, algorithm="HS256")


@pytest.fixture
async def strong_client(sqlite_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, object]]:
    """A runtime configured as ``serve`` must be: a private secret."""
    from voipbin.api.app import create_app
    from voipbin.runtime import Runtime

    rt = Runtime(Settings(database_url=sqlite_url, jwt_secret=STRONG_SECRET, sip_enabled=False,  # type: ignore[call-arg]
                          _env_file=None))
    await rt.start()
    rt.seed = await rt.seed_sandbox()  # type: ignore[attr-defined]
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(rt)),
                                     base_url="http://api.test") as c:
            yield c, rt
    finally:
        await rt.stop()


async def test_a_token_forged_with_the_old_public_secret_is_401(strong_client) -> None:  # type: ignore[no-untyped-def]
    client, rt = strong_client
    admin = (await client.post("/auth/login", json={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD})).json()
    agent_id = jwt.decode(admin["token"], options={"verify_signature": False})["sub"]
    forged = _forge(INSECURE_DEFAULT_JWT_SECRET, sub=agent_id, customer_id=rt.seed.customer_id)
    for params in ({"token": forged},):
        r = await client.get("/v1.0/customer", params=params)
        assert r.status_code == 401 and r.json()["error"]["status"] == "UNAUTHENTICATED"
    r = await client.get("/v1.0/customer", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401
    assert (await client.get("/v1.0/customer", params={"token": admin["token"]})).status_code == 200


async def test_a_well_signed_token_naming_no_agent_is_401(client: httpx.AsyncClient, runtime) -> None:  # type: ignore[no-untyped-def]
    forged = _forge(runtime.settings.jwt_secret, sub="00000000-0000-0000-0000-000000000001",
                    customer_id=runtime.seed.customer_id)
    r = await client.get("/v1.0/customer", params={"token": forged})
    assert r.status_code == 401


async def test_a_token_claiming_another_customer_is_401(client: httpx.AsyncClient, admin_token: str, runtime) -> None:  # type: ignore[no-untyped-def]
    agent_id = jwt.decode(admin_token, options={"verify_signature": False})["sub"]
    forged = _forge(runtime.settings.jwt_secret, sub=agent_id, customer_id="00000000-0000-0000-0000-00000000beef")
    assert (await client.get("/v1.0/numbers", params={"token": forged})).status_code == 401


async def _second_agent(client: httpx.AsyncClient, runtime, permission: int) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    async with runtime.sessions() as session, session.begin():
        agent = await LoginService.add_agent(session, customer_id=runtime.seed.customer_id, username="agent@localhost",
                                             password="agent-pass", permission=permission)
    r = await client.post("/auth/login", json={"username": "agent@localhost", "password": "agent-pass"})
    return agent.id, r.json()["token"]


async def test_a_deleted_agents_token_is_401_at_once(client: httpx.AsyncClient, runtime) -> None:  # type: ignore[no-untyped-def]
    agent_id, token = await _second_agent(client, runtime, PERMISSION_CUSTOMER_ADMIN)
    assert (await client.get("/v1.0/customer", params={"token": token})).status_code == 200  # now cached
    async with runtime.sessions() as session, session.begin():
        await session.execute(update(Agent).where(Agent.id == agent_id).values(tm_delete=Agent.tm_create))
    await runtime.bus.publish(Event("agent_deleted", runtime.seed.customer_id, "agent", agent_id, {"id": agent_id}))
    r = await client.get("/v1.0/customer", params={"token": token})
    assert r.status_code == 401 and "agent" in r.json()["error"]["message"]


async def test_an_agent_unknown_to_the_cache_is_checked_in_the_store(client: httpx.AsyncClient, runtime) -> None:  # type: ignore[no-untyped-def]
    agent_id, token = await _second_agent(client, runtime, PERMISSION_CUSTOMER_ADMIN)
    async with runtime.sessions() as session, session.begin():
        await session.execute(update(Agent).where(Agent.id == agent_id).values(tm_delete=Agent.tm_create))
    assert (await client.get("/v1.0/customer", params={"token": token})).status_code == 401


async def test_a_disabled_customer_locks_out_its_tokens(client: httpx.AsyncClient, admin_token: str, runtime) -> None:  # type: ignore[no-untyped-def]
    assert (await client.get("/v1.0/customer", params={"token": admin_token})).status_code == 200
    async with runtime.sessions() as session, session.begin():
        await session.execute(update(Customer).where(Customer.id == runtime.seed.customer_id).values(status="frozen"))
    await runtime.bus.publish(Event("customer_updated", runtime.seed.customer_id, "customer",
                                    runtime.seed.customer_id, {}))
    assert (await client.get("/v1.0/customer", params={"token": admin_token})).status_code == 401


async def test_permissions_come_from_the_store_not_the_token(client: httpx.AsyncClient, runtime) -> None:  # type: ignore[no-untyped-def]
    agent_id, _ = await _second_agent(client, runtime, PERMISSION_CUSTOMER_AGENT)
    forged_admin = _forge(runtime.settings.jwt_secret, sub=agent_id, customer_id=runtime.seed.customer_id)
    r = await client.post("/v1.0/accesskeys", params={"token": forged_admin}, json={"name": "x"})
    assert r.status_code == 403


async def test_login_limit_per_username_is_429_with_retry_after(client: httpx.AsyncClient, runtime) -> None:  # type: ignore[no-untyped-def]
    limit = runtime.settings.login_limit_per_username
    for _ in range(limit):
        r = await client.post("/auth/login", json={"username": ADMIN_USERNAME, "password": "guess"})
        assert r.status_code == 401
    for password in ("guess", ADMIN_PASSWORD):  # while locked, even the right password learns nothing
        r = await client.post("/auth/login", json={"username": ADMIN_USERNAME, "password": password})
        assert r.status_code == 429
        assert r.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
        assert 0 < int(r.headers["Retry-After"]) <= runtime.settings.login_limit_window_seconds


async def test_login_limit_per_source_spans_usernames(client: httpx.AsyncClient, runtime) -> None:  # type: ignore[no-untyped-def]
    statuses = [(await client.post("/auth/login", json={"username": f"u{i}@example.com", "password": "p"})).status_code
                for i in range(runtime.settings.login_limit_per_source + 1)]
    assert statuses[:-1] == [401] * runtime.settings.login_limit_per_source
    assert statuses[-1] == 429


async def test_concurrent_wrong_logins_do_not_stall_the_event_loop(client: httpx.AsyncClient) -> None:
    loop = asyncio.get_running_loop()
    lags: list[float] = []
    done = asyncio.Event()

    async def ping() -> None:  # a coroutine that wants the loop every 10 ms, as SIP and RTP do
        while not done.is_set():
            start = loop.time()
            await asyncio.sleep(0.01)
            lags.append(loop.time() - start - 0.01)

    pinger = asyncio.create_task(ping())
    results = await asyncio.gather(*(client.post("/auth/login", json={"username": ADMIN_USERNAME, "password": f"w{i}"})
                                     for i in range(5)))
    done.set()
    await pinger
    assert [r.status_code for r in results] == [401] * 5
    assert len(lags) >= 3, "the logins hashed for at least a few ping periods"
    assert max(lags) < 0.100, f"loop stalled {max(lags) * 1000:.0f} ms while 5 logins hashed"


@pytest.mark.parametrize("path", ["/login", "/v1.0/auth/login"])
async def test_login_aliases(client: httpx.AsyncClient, path: str) -> None:
    r = await client.post(path, json={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD})
    assert r.status_code == 200 and r.json()["token"]


async def test_signup_aliases(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1.0/auth/signup", json={"email": "alias@example.com", "accepted_tos": True})
    assert r.status_code == 200 and r.json()["temp_token"]
    r = await client.post("/v1.0/auth/complete-signup", json={"temp_token": r.json()["temp_token"], "code": "000000"})
    assert r.status_code == 400 and r.json()["error"]["message"] == "code is incorrect"


async def test_signup_flood_from_one_source_is_429_with_retry_after(client: httpx.AsyncClient, runtime) -> None:  # type: ignore[no-untyped-def]
    limit = runtime.settings.signup_limit_per_source
    for i in range(limit):
        r = await client.post("/auth/signup", json={"email": f"flood{i}@example.com"})
        assert r.status_code == 200
    r = await client.post("/v1.0/auth/signup", json={"email": "one-more@example.com"})
    assert r.status_code == 429 and r.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert 0 < int(r.headers["Retry-After"]) <= runtime.settings.signup_limit_window_seconds
