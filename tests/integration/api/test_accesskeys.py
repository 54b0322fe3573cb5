"""Accesskeys: CRUD, token shown once and stored hashed, expiry (seed 003, spec accesskeys/*.yaml)."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import select

from voipbin.common.clock import parse_ts, utcnow


async def test_create_shows_token_once_and_validates(client: httpx.AsyncClient, admin_token: str, spec) -> None:  # type: ignore[no-untyped-def]
    q = {"token": admin_token}
    r = await client.post("/v1.0/accesskeys", params=q,
                          json={"name": "my-api-key", "detail": "API key for automated access"})
    assert r.status_code == 200
    key = r.json()
    spec.validate("CustomerManagerAccesskey", key)
    assert key["token"].startswith("vb_") and key["token"].startswith(key["token_prefix"])
    got = (await client.get(f"/v1.0/accesskeys/{key['id']}", params=q)).json()
    spec.validate("CustomerManagerAccesskey", got)
    assert "token" not in got and got["token_prefix"] == key["token_prefix"]
    listed = (await client.get("/v1.0/accesskeys", params=q)).json()
    spec.validate_page("CustomerManagerAccesskey", listed)
    assert all("token" not in k for k in listed["result"])


async def test_token_is_stored_hashed(client: httpx.AsyncClient, admin_token: str, runtime) -> None:  # type: ignore[no-untyped-def]
    from voipbin.store.models import Accesskey

    key = (await client.post("/v1.0/accesskeys", params={"token": admin_token}, json={})).json()
    async with runtime.sessions() as session:
        row = await session.scalar(select(Accesskey).where(Accesskey.id == key["id"]))
    assert row.token_hash != key["token"] and key["token"] not in row.token_hash


async def test_expire_is_seconds_with_a_one_day_minimum(client: httpx.AsyncClient, admin_token: str) -> None:
    q = {"token": admin_token}
    r = await client.post("/v1.0/accesskeys", params=q, json={"expire": 86400 * 2})
    assert r.status_code == 200
    lifetime = parse_ts(r.json()["tm_expire"]) - utcnow()
    assert timedelta(days=1, hours=23) < lifetime <= timedelta(days=2)
    r = await client.post("/v1.0/accesskeys", params=q, json={"expire": 60})
    assert r.status_code == 400 and "expire" in r.json()["error"]["message"]
    r = await client.post("/v1.0/accesskeys", params=q, json={"expire": "soon"})
    assert r.status_code == 400 and "expire" in r.json()["error"]["message"]


async def test_expired_key_is_refused(client: httpx.AsyncClient, admin_token: str, runtime) -> None:  # type: ignore[no-untyped-def]
    from voipbin.store.models import Accesskey

    key = (await client.post("/v1.0/accesskeys", params={"token": admin_token}, json={})).json()
    async with runtime.sessions() as session, session.begin():
        row = await session.get(Accesskey, key["id"])
        row.tm_expire = utcnow() - timedelta(seconds=1)
    r = await client.get("/v1.0/customer", params={"accesskey": key["token"]})
    assert r.status_code == 401 and "expired" in r.json()["error"]["message"]


async def test_update_and_delete(client: httpx.AsyncClient, admin_token: str) -> None:
    q = {"token": admin_token}
    key = (await client.post("/v1.0/accesskeys", params=q, json={"name": "a"})).json()
    r = await client.put(f"/v1.0/accesskeys/{key['id']}", params=q, json={"name": "b", "detail": "d"})
    assert r.status_code == 200 and r.json()["name"] == "b" and r.json()["tm_update"] is not None
    r = await client.delete(f"/v1.0/accesskeys/{key['id']}", params=q)
    assert r.status_code == 200 and r.json()["tm_delete"] is not None
    assert (await client.get(f"/v1.0/accesskeys/{key['id']}", params=q)).status_code == 404
    assert (await client.get("/v1.0/customer", params={"accesskey": key["token"]})).status_code == 401
