"""What the upstream clients (Go SDK, ``vn`` CLI, MCP server) rely on: ``GET /me``, a top-level
``message`` on errors, the webhook secret shown only on rotation, an opaque ``pod_id``, and the
credential rule (a bad ``?token=`` beside a valid Bearer is a 401 naming it)."""

from __future__ import annotations

import re
import socket

import httpx

from voipbin.config import Settings


async def test_me_answers_for_a_token_and_for_an_accesskey(client: httpx.AsyncClient, admin_token: str,
                                                           runtime, spec) -> None:  # type: ignore[no-untyped-def]
    r = await client.get("/v1.0/me", params={"token": admin_token})
    assert r.status_code == 200, r.text
    me = r.json()
    spec.validate("AgentManagerAgent", me)
    assert me["username"] == "admin@localhost" and me["customer_id"] == runtime.seed.customer_id
    key = (await client.post("/v1.0/accesskeys", params={"token": admin_token}, json={"name": "cli"})).json()
    r = await client.get("/v1.0/me", params={"accesskey": key["token"]})
    assert r.status_code == 200, r.text
    spec.validate("AgentManagerAgent", r.json())
    assert r.json()["id"] == key["id"] and r.json()["customer_id"] == runtime.seed.customer_id
    r = await client.get("/v1.0/me", params={"accesskey": "vb_forged"})
    assert r.status_code == 401


async def test_errors_carry_a_top_level_message_beside_the_envelope(client: httpx.AsyncClient, spec) -> None:  # type: ignore[no-untyped-def]
    r = await client.get("/v1.0/me")
    assert r.status_code == 401
    body = r.json()
    spec.validate("ErrorResponse", body)
    assert body["message"] == body["error"]["message"] and "credential" in body["message"]


async def test_webhook_secret_only_on_rotation(client: httpx.AsyncClient, admin_token: str, spec) -> None:  # type: ignore[no-untyped-def]
    q = {"token": admin_token}
    assert "webhook_secret" not in (await client.get("/v1.0/customer", params=q)).json()
    first = await client.post("/v1.0/customer/webhook_secret/rotate", params=q)
    assert first.status_code == 200, first.text
    spec.validate("CustomerManagerCustomer", first.json())
    second = (await client.post("/v1.0/customer/webhook_secret/rotate", params=q)).json()
    assert re.fullmatch(r"[0-9a-f]{64}", first.json()["webhook_secret"])
    assert second["webhook_secret"] != first.json()["webhook_secret"]
    assert "webhook_secret" not in (await client.get("/v1.0/customer", params=q)).json()


async def test_customer_metadata(client: httpx.AsyncClient, admin_token: str, spec) -> None:  # type: ignore[no-untyped-def]
    q = {"token": admin_token}
    r = await client.put("/v1.0/customer/metadata", params=q, json={"rtp_debug": True})
    assert r.status_code == 200, r.text
    spec.validate("CustomerManagerCustomer", r.json())
    assert r.json()["metadata"] == {"rtp_debug": True}
    assert (await client.get("/v1.0/customer", params=q)).json()["metadata"] == {"rtp_debug": True}
    r = await client.put("/v1.0/customer/metadata", params=q, json={"rtp_debug": "yes please"})
    assert r.status_code == 400 and "rtp_debug" in r.json()["message"]


def test_default_pod_id_is_opaque(sqlite_url: str) -> None:
    pod_id = Settings(database_url=sqlite_url, _env_file=None).pod_id  # type: ignore[call-arg]
    assert re.fullmatch(r"pod-[0-9a-f]{12}", pod_id)
    assert socket.gethostname() not in pod_id


async def test_a_bad_token_beside_a_valid_bearer_is_401_naming_it(client: httpx.AsyncClient,
                                                                   admin_token: str) -> None:
    bearer = {"Authorization": f"Bearer {admin_token}"}
    assert (await client.get("/v1.0/me", headers=bearer)).status_code == 200
    r = await client.get("/v1.0/me", headers=bearer, params={"token": "not-a-jwt"})
    assert r.status_code == 401 and r.json()["error"]["status"] == "UNAUTHENTICATED"
    assert "token" in r.json()["message"]
    r = await client.get("/v1.0/me", headers=bearer, params={"accesskey": "vb_forged"})
    assert r.status_code == 401 and "accesskey" in r.json()["message"]
