"""Issue 13 finding 9: with a pool (as ``serve`` and the sandbox run), numbers are claimed only from
``GET /v1.0/available_numbers``; anything else is a 400 that does not tell whether someone owns it."""

from __future__ import annotations

import httpx
import pytest

from voipbin.config import Settings
from voipbin.customers.service import CustomerService

POOL = "+15550100000-+15550100009, +442071234567"


@pytest.fixture
def settings(sqlite_url: str) -> Settings:
    return Settings(database_url=sqlite_url, sip_enabled=False, number_pool=POOL,  # type: ignore[call-arg]
                    _env_file=None)


async def _available(client: httpx.AsyncClient, token: str, **params: object) -> httpx.Response:
    return await client.get("/v1.0/available_numbers", params={"token": token, **params})


async def test_available_numbers_are_the_unowned_pool_numbers(client: httpx.AsyncClient, admin_token: str,
                                                             runtime, spec) -> None:  # type: ignore[no-untyped-def]
    r = await _available(client, admin_token, country_code="US")
    assert r.status_code == 200
    numbers = [item["number"] for item in r.json()["result"]]
    assert runtime.seed.number == "+15550100000" and runtime.seed.number not in numbers  # owned by the sandbox seed
    assert numbers == [f"+1555010000{i}" for i in range(1, 10)]
    for item in r.json()["result"]:
        spec.validate("NumberManagerAvailableNumber", item)
        assert item["country"] == "US" and item["features"] == ["voice"]
    assert [i["number"] for i in (await _available(client, admin_token, country_code="gb")).json()["result"]] \
        == ["+442071234567"]
    assert len((await _available(client, admin_token, country_code="US", page_size=3)).json()["result"]) == 3
    assert (await _available(client, admin_token, country_code="FR")).json()["result"] == []
    r = await _available(client, admin_token)
    assert r.status_code == 400 and "country_code" in r.json()["error"]["message"]
    assert (await client.get("/v1.0/available_numbers", params={"country_code": "US"})).status_code == 401


async def test_a_claimed_number_leaves_the_pool(client: httpx.AsyncClient, admin_token: str, spec) -> None:  # type: ignore[no-untyped-def]
    q = {"token": admin_token}
    pick = (await _available(client, admin_token, country_code="US")).json()["result"][0]["number"]
    r = await client.post("/v1.0/numbers", params=q, json={"number": pick, "name": "support"})
    assert r.status_code == 200, r.text
    spec.validate("NumberManagerNumber", r.json())
    assert pick not in [i["number"] for i in (await _available(client, admin_token, country_code="US")).json()["result"]]
    await client.delete(f"/v1.0/numbers/{r.json()['id']}", params=q)
    assert pick in [i["number"] for i in (await _available(client, admin_token, country_code="US")).json()["result"]]


async def test_numbers_outside_the_pool_or_owned_are_the_same_400(client: httpx.AsyncClient, admin_token: str,
                                                                 runtime) -> None:  # type: ignore[no-untyped-def]
    from voipbin.store.models import Number

    async with runtime.sessions() as session, session.begin():  # another customer owns a pool number
        other = await CustomerService(runtime.sessions, runtime.bus).create(session, email="other@example.com")
        await runtime.numbers.add_in(session, Number(customer_id=other.id, number="+15550100005"))
    q = {"token": admin_token}
    outside = await client.post("/v1.0/numbers", params=q, json={"number": "+15551234567"})
    owned = await client.post("/v1.0/numbers", params=q, json={"number": "+15550100005"})
    mine = await client.post("/v1.0/numbers", params=q, json={"number": runtime.seed.number})
    for r in (outside, owned, mine):
        assert r.status_code == 400
        assert r.json()["error"]["details"] == [{"field": "number"}]
        assert "not available" in r.json()["error"]["message"]
    assert outside.json()["error"]["message"].replace("+15551234567", "N") \
        == owned.json()["error"]["message"].replace("+15550100005", "N")
