"""Customer, numbers and extensions over HTTP: shapes (validated against the upstream spec),
required fields, E.164, pagination, soft delete and tenant isolation."""

from __future__ import annotations

import httpx
import pytest


async def _other_customer_token(client: httpx.AsyncClient, runtime) -> str:  # type: ignore[no-untyped-def]
    from voipbin.auth.identity import PERMISSION_CUSTOMER_ADMIN
    from voipbin.auth.login import LoginService

    async with runtime.sessions() as session, session.begin():
        other = await runtime.customers.create(session, email="other@example.com")
        await LoginService.add_agent(session, customer_id=other.id, username="other@example.com",
                                     password="other-pass", permission=PERMISSION_CUSTOMER_ADMIN)
    r = await client.post("/auth/login", json={"username": "other@example.com", "password": "other-pass"})
    return str(r.json()["token"])


async def test_customer_get_and_webhook_update(client: httpx.AsyncClient, admin_token: str, spec) -> None:  # type: ignore[no-untyped-def]
    q = {"token": admin_token}
    me = (await client.get("/v1.0/customer", params=q)).json()
    spec.validate("CustomerManagerCustomer", me)
    assert "webhook_secret" not in me
    r = await client.put("/v1.0/customer", params=q,
                         json={"webhook_method": "POST", "webhook_uri": "https://example.com/voipbin/events"})
    assert r.status_code == 200
    spec.validate("CustomerManagerCustomer", r.json())
    assert r.json()["webhook_uri"] == "https://example.com/voipbin/events"
    assert "webhook_secret" not in r.json()
    r = await client.put("/v1.0/customer", params=q, json={"webhook_method": "PATCH"})
    assert r.status_code == 400 and "webhook_method" in r.json()["error"]["message"]
    r = await client.put("/v1.0/customer", params=q, json={"webhook_uri": "ftp://x"})
    assert r.status_code == 400 and "webhook_uri" in r.json()["error"]["message"]
    r = await client.put("/v1.0/customer", params=q, json={"webhook_uri": ""})
    assert r.status_code == 200 and r.json()["webhook_uri"] == ""


@pytest.mark.parametrize("missing", ["name", "detail", "extension", "password"])
async def test_extension_create_requires_each_field(client: httpx.AsyncClient, admin_token: str,
                                                    missing: str) -> None:
    body = {"name": "quickstart-phone", "detail": "d", "extension": "quickstart1", "password": "secret-pass-1"}
    del body[missing]
    r = await client.post("/v1.0/extensions", params={"token": admin_token}, json=body)
    assert r.status_code == 400
    assert r.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert r.json()["error"]["message"] == f"{missing} is required"
    assert (await client.get("/v1.0/extensions", params={"token": admin_token})).json()["result"] == []


async def test_extension_lifecycle_as_seed_003(client: httpx.AsyncClient, admin_token: str, runtime, spec) -> None:  # type: ignore[no-untyped-def]
    q = {"token": admin_token}
    r = await client.post("/v1.0/extensions", params=q, json={
        "name": "quickstart-phone", "detail": "Quickstart softphone extension",
        "extension": "quickstart1", "password": "your-secure-password-here"})
    assert r.status_code == 200
    ext = r.json()
    spec.validate("RegistrarManagerExtension", ext)
    assert ext["username"] == ext["extension"] == "quickstart1"
    assert ext["domain_name"] == ext["customer_id"] == runtime.seed.customer_id
    assert ext["direct_hash"].startswith("direct.")
    assert ext["tm_update"] is None and ext["tm_delete"] is None
    dup = await client.post("/v1.0/extensions", params=q, json={
        "name": "x", "detail": "y", "extension": "quickstart1", "password": "phone-pass-1"})
    assert dup.status_code == 409
    r = await client.put(f"/v1.0/extensions/{ext['id']}", params=q, json={"detail": "changed", "password": "phone-pass-2"})
    assert r.status_code == 200 and r.json()["detail"] == "changed" and r.json()["password"] == "phone-pass-2"
    spec.validate("RegistrarManagerExtension", r.json())
    r = await client.delete(f"/v1.0/extensions/{ext['id']}", params=q)
    assert r.status_code == 200 and r.json()["tm_delete"] is not None
    assert (await client.get(f"/v1.0/extensions/{ext['id']}", params=q)).status_code == 404
    again = await client.post("/v1.0/extensions", params=q, json={
        "name": "x", "detail": "y", "extension": "quickstart1", "password": "phone-pass-1"})
    assert again.status_code == 200


async def test_extension_rejects_a_bad_sip_user(client: httpx.AsyncClient, admin_token: str) -> None:
    r = await client.post("/v1.0/extensions", params={"token": admin_token},
                          json={"name": "n", "detail": "d", "extension": "a b@c", "password": "phone-pass-1"})
    assert r.status_code == 400 and "extension" in r.json()["error"]["message"]


async def test_numbers_e164_and_ownership(client: httpx.AsyncClient, admin_token: str, runtime, spec) -> None:  # type: ignore[no-untyped-def]
    q = {"token": admin_token}
    listed = (await client.get("/v1.0/numbers", params=q)).json()
    spec.validate_page("NumberManagerNumber", listed)
    assert [n["number"] for n in listed["result"]] == [runtime.seed.number]
    for bad in ("15551234567", "+0123", "+1555-123-4567", "+1 555 123", ""):
        r = await client.post("/v1.0/numbers", params=q, json={"number": bad})
        assert r.status_code == 400, bad
        assert "number" in r.json()["error"]["message"]
    r = await client.post("/v1.0/numbers", params=q, json={"number": "+15551234567", "name": "support"})
    assert r.status_code == 200
    num = r.json()
    spec.validate("NumberManagerNumber", num)
    assert (await client.post("/v1.0/numbers", params=q, json={"number": "+15551234567"})).status_code == 409
    flow = "a1b2c3d4-e5f6-7890-1234-567890abcdef"
    r = await client.put(f"/v1.0/numbers/{num['id']}", params=q, json={"call_flow_id": flow})
    assert r.status_code == 200 and r.json()["call_flow_id"] == flow
    r = await client.put(f"/v1.0/numbers/{num['id']}", params=q, json={"call_flow_id": "not-a-uuid"})
    assert r.status_code == 400 and "call_flow_id" in r.json()["error"]["message"]
    r = await client.delete(f"/v1.0/numbers/{num['id']}", params=q)
    assert r.status_code == 200 and r.json()["status"] == "deleted"
    assert (await client.get(f"/v1.0/numbers/{num['id']}", params=q)).status_code == 404


async def test_other_customers_resources_are_404(client: httpx.AsyncClient, admin_token: str, runtime) -> None:  # type: ignore[no-untyped-def]
    q = {"token": admin_token}
    ext = (await client.post("/v1.0/extensions", params=q, json={
        "name": "mine", "detail": "d", "extension": "100", "password": "phone-pass-1"})).json()
    key = (await client.post("/v1.0/accesskeys", params=q, json={})).json()
    number = (await client.get("/v1.0/numbers", params=q)).json()["result"][0]
    other = {"token": await _other_customer_token(client, runtime)}
    for path in (f"/v1.0/extensions/{ext['id']}", f"/v1.0/accesskeys/{key['id']}", f"/v1.0/numbers/{number['id']}"):
        assert (await client.get(path, params=other)).status_code == 404, path
        assert (await client.delete(path, params=other)).status_code == 404, path
        assert (await client.get(path, params=q)).status_code == 200, path
    assert (await client.get("/v1.0/extensions", params=other)).json()["result"] == []


async def test_pagination_newest_first_with_cursor(client: httpx.AsyncClient, admin_token: str) -> None:
    q = {"token": admin_token}
    for i in range(5):
        r = await client.post("/v1.0/extensions", params=q,
                              json={"name": f"n{i}", "detail": "d", "extension": f"ext{i}", "password": "phone-pass-1"})
        assert r.status_code == 200
    page1 = (await client.get("/v1.0/extensions", params={**q, "page_size": 2})).json()
    assert [e["name"] for e in page1["result"]] == ["n4", "n3"]
    assert page1["next_page_token"] == page1["result"][-1]["tm_create"]
    page2 = (await client.get("/v1.0/extensions", params={**q, "page_size": 2,
                                                          "page_token": page1["next_page_token"]})).json()
    assert [e["name"] for e in page2["result"]] == ["n2", "n1"]
    page3 = (await client.get("/v1.0/extensions", params={**q, "page_size": 2,
                                                          "page_token": page2["next_page_token"]})).json()
    assert [e["name"] for e in page3["result"]] == ["n0"] and page3["next_page_token"] == ""
    for size in (0, -3, 1000):
        assert len((await client.get("/v1.0/extensions", params={**q, "page_size": size})).json()["result"]) == 5
    r = await client.get("/v1.0/extensions", params={**q, "page_token": "yesterday"})
    assert r.status_code == 400 and "page_token" in r.json()["error"]["message"]


async def test_malformed_json_is_400(client: httpx.AsyncClient, admin_token: str) -> None:
    r = await client.post("/v1.0/extensions", params={"token": admin_token}, content=b"{not json",
                          headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["status"] == "INVALID_ARGUMENT"


async def test_openapi_lists_what_is_implemented(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    paths = doc["paths"]
    for path in ("/auth/login", "/auth/signup", "/auth/complete-signup", "/v1.0/customer", "/v1.0/accesskeys",
                 "/v1.0/accesskeys/{accesskey_id}", "/v1.0/numbers", "/v1.0/numbers/{number_id}",
                 "/v1.0/extensions", "/v1.0/extensions/{extension_id}"):
        assert path in paths, path
    create = paths["/v1.0/extensions"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    required = doc["components"]["schemas"][create.rsplit("/", 1)[1]]["required"]
    assert sorted(required) == ["detail", "extension", "name", "password"]
