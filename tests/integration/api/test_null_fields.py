"""Issue 14's reproductions: a JSON ``null`` for a field of an update is never a 500; the field is
left as it was (``PUT /customer`` and ``PUT /accesskeys/{id}`` as reported, and every other PUT)."""

from __future__ import annotations

from typing import Any

import httpx


async def _put_nulls(client: httpx.AsyncClient, q: dict[str, str], path: str, fields: list[str]) -> dict[str, Any]:
    before = (await client.get(path, params=q)).json()
    r = await client.put(path, params=q, json=dict.fromkeys(fields))
    assert r.status_code in (200, 400), (path, r.status_code, r.text)
    after = (await client.get(path, params=q)).json()
    assert {f: after[f] for f in fields} == {f: before[f] for f in fields}, path
    return after


async def test_null_fields_of_an_update_are_not_500s(client: httpx.AsyncClient, admin_token: str) -> None:
    q = {"token": admin_token}
    await _put_nulls(client, q, "/v1.0/customer", ["name", "detail"])
    key = (await client.post("/v1.0/accesskeys", params=q, json={"name": "k", "detail": "d"})).json()
    await _put_nulls(client, q, f"/v1.0/accesskeys/{key['id']}", ["name", "detail"])
    ext = (await client.post("/v1.0/extensions", params=q, json={
        "name": "n", "detail": "d", "extension": "nulls1", "password": "strong-pass-1"})).json()
    await _put_nulls(client, q, f"/v1.0/extensions/{ext['id']}", ["name", "detail"])
    flow = (await client.post("/v1.0/flows", params=q, json={
        "name": "f", "detail": "d", "actions": [{"type": "answer"}]})).json()
    await _put_nulls(client, q, f"/v1.0/flows/{flow['id']}", ["name", "detail"])
    number = (await client.get("/v1.0/numbers", params=q)).json()["result"][0]
    await _put_nulls(client, q, f"/v1.0/numbers/{number['id']}", ["name", "detail"])
