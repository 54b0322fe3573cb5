"""The registrar's credentials are kept in memory (issue 21) yet follow the API: a password changed or an
extension deleted through REST is what the next REGISTER is checked against (the runtime's wiring)."""

from __future__ import annotations

from typing import Any

import httpx


async def test_a_changed_password_and_a_deleted_extension_reach_the_registrar(
        client: httpx.AsyncClient, admin_token: str, runtime: Any) -> None:
    t = {"token": admin_token}
    r = await client.post("/v1.0/extensions", params=t, json={"name": "desk", "detail": "", "extension": "4001",
                                                               "password": "first-Secret-42x"})
    assert r.status_code == 200, r.text
    ext = r.json()
    domain = ext["customer_id"]
    assert (await runtime.credentials.lookup(domain, "4001")).password == "first-Secret-42x"
    r = await client.put(f"/v1.0/extensions/{ext['id']}", params=t, json={"password": "second-Secret-42y"})
    assert r.status_code == 200, r.text
    await runtime.bus.flush()  # the extension_updated event reached this process's subscribers
    assert (await runtime.credentials.lookup(domain, "4001")).password == "second-Secret-42y"
    assert (await client.delete(f"/v1.0/extensions/{ext['id']}", params=t)).status_code == 200
    await runtime.bus.flush()
    assert await runtime.credentials.lookup(domain, "4001") is None
