"""Issue 13 finding 7: weak SIP passwords (shorter than 8 characters, or digits only) are a 400 naming
``password`` at extension create and update."""

from __future__ import annotations

import httpx
import pytest


@pytest.mark.parametrize("weak", ["", "pw", "seven77", "12345678", "0000000000000"])
async def test_weak_passwords_are_refused_at_create_and_update(client: httpx.AsyncClient, admin_token: str,
                                                               weak: str) -> None:
    q = {"token": admin_token}
    body = {"name": "phone", "detail": "d", "extension": "2001", "password": weak}
    r = await client.post("/v1.0/extensions", params=q, json=body)
    assert r.status_code == 400 and "password" in r.json()["error"]["message"], r.text
    r = await client.post("/v1.0/extensions", params=q, json={**body, "password": "strong-enough-1"})
    assert r.status_code == 200, r.text
    ext = r.json()
    r = await client.put(f"/v1.0/extensions/{ext['id']}", params=q, json={"password": weak})
    assert r.status_code == 400 and "password" in r.json()["error"]["message"], r.text
    got = (await client.get(f"/v1.0/extensions/{ext['id']}", params=q)).json()
    assert got["password"] == "strong-enough-1"
