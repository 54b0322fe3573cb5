"""Login, credentials in the three places, and the 401 paths (seed 003 "Authentication")."""

from __future__ import annotations

from datetime import timedelta

import httpx
import jwt

from tests_support.net import ADMIN_PASSWORD, ADMIN_USERNAME


async def test_login_returns_a_jwt_valid_seven_days(client: httpx.AsyncClient) -> None:
    r = await client.post("/auth/login", json={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD})
    assert r.status_code == 200
    body = r.json()
    assert body["username"] == ADMIN_USERNAME
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert timedelta(seconds=claims["exp"] - claims["iat"]) == timedelta(days=7)


async def test_wrong_password_and_unknown_user_get_the_same_401(client: httpx.AsyncClient) -> None:
    wrong = await client.post("/auth/login", json={"username": ADMIN_USERNAME, "password": "nope"})
    unknown = await client.post("/auth/login", json={"username": "ghost@example.com", "password": "nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["error"]["message"] == unknown.json()["error"]["message"]
    assert wrong.json()["error"]["status"] == "UNAUTHENTICATED"


async def test_login_without_password_is_400_naming_the_field(client: httpx.AsyncClient) -> None:
    r = await client.post("/auth/login", json={"username": ADMIN_USERNAME})
    assert r.status_code == 400
    assert "password" in r.json()["error"]["message"]


async def test_token_works_as_query_and_bearer(client: httpx.AsyncClient, admin_token: str) -> None:
    assert (await client.get("/v1.0/customer", params={"token": admin_token})).status_code == 200
    r = await client.get("/v1.0/customer", headers={"Authorization": f"Bearer {admin_token}"})
    assert r.status_code == 200


async def test_missing_malformed_and_forged_credentials_are_401(client: httpx.AsyncClient, admin_token: str) -> None:
    assert (await client.get("/v1.0/customer")).status_code == 401
    assert (await client.get("/v1.0/customer", headers={"Authorization": f"Basic {admin_token}"})).status_code == 401
    forged = jwt.encode({"sub": "x", "customer_id": "y", "exp": 9999999999}, "not-the-secret-but-long-enough-32b",
                        algorithm="HS256")
    r = await client.get("/v1.0/customer", params={"token": forged})
    assert r.status_code == 401
    assert r.json()["error"]["status"] == "UNAUTHENTICATED"


async def test_expired_token_is_401(client: httpx.AsyncClient, runtime) -> None:  # type: ignore[no-untyped-def]
    from voipbin.auth.tokens import TokenIssuer

    old = TokenIssuer(runtime.settings.jwt_secret, -1).issue(
        agent_id="a", customer_id=runtime.seed.customer_id, permission=32, username="x")
    r = await client.get("/v1.0/customer", params={"token": old})
    assert r.status_code == 401
    assert "expired" in r.json()["error"]["message"]


async def test_accesskey_works_only_as_accesskey_parameter(client: httpx.AsyncClient, admin_token: str) -> None:
    key = (await client.post("/v1.0/accesskeys", params={"token": admin_token}, json={"name": "k"})).json()
    assert (await client.get("/v1.0/numbers", params={"accesskey": key["token"]})).status_code == 200
    assert (await client.get("/v1.0/numbers", params={"token": key["token"]})).status_code == 401
    assert (await client.get("/v1.0/numbers", headers={"Authorization": f"Bearer {key['token']}"})).status_code == 401
    assert (await client.get("/v1.0/numbers", params={"accesskey": admin_token})).status_code == 401


async def test_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1.0/customer", headers={"X-Request-Id": "req-123"})
    assert r.headers["x-request-id"] == "req-123"
    assert r.json()["error"]["request_id"] == "req-123"


async def test_manager_only_endpoints_refuse_a_plain_agent(client: httpx.AsyncClient, runtime) -> None:  # type: ignore[no-untyped-def]
    from voipbin.auth.identity import PERMISSION_CUSTOMER_AGENT
    from voipbin.auth.login import LoginService

    async with runtime.sessions() as session, session.begin():
        await LoginService.add_agent(session, customer_id=runtime.seed.customer_id, username="agent@localhost",
                                     password="agent-pass", permission=PERMISSION_CUSTOMER_AGENT)
    token = (await client.post("/auth/login", json={"username": "agent@localhost", "password": "agent-pass"})).json()["token"]
    assert (await client.get("/v1.0/extensions", params={"token": token})).status_code == 200
    r = await client.post("/v1.0/extensions", params={"token": token},
                          json={"name": "n", "detail": "d", "extension": "e1", "password": "p"})
    assert r.status_code == 403
    assert r.json()["error"]["status"] == "PERMISSION_DENIED"
    assert (await client.put("/v1.0/customer", params={"token": token}, json={"name": "x"})).status_code == 403
    assert (await client.post("/v1.0/accesskeys", params={"token": token}, json={})).status_code == 403
