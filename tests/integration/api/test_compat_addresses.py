"""Addresses without ``type`` (the Go SDK and CLI send only ``target``) and extensions with an empty
``name``/``detail`` (upstream requires the fields present, not filled)."""

from __future__ import annotations

import httpx
import pytest

from voipbin.api.addresses import infer_type
from voipbin.common.errors import InvalidArgument


@pytest.mark.parametrize(("address", "kind", "target", "target_name"), [
    ({"target": "+15551234567"}, "tel", "+15551234567", None),
    ({"type": "", "target": " +821012345678 "}, "tel", "+821012345678", None),
    ({"target": "sip:bob@example.com"}, "sip", "sip:bob@example.com", None),
    ({"target": "SIPS:bob@example.com;transport=tls"}, "sip", "SIPS:bob@example.com;transport=tls", None),
    ({"target": "bob@example.com"}, "sip", "sip:bob@example.com", None),
    ({"target": "550e8400-e29b-41d4-a716-446655440000"}, "extension", "550e8400-e29b-41d4-a716-446655440000", None),
    ({"target": "quickstart1"}, "extension", "", "quickstart1"),
    ({"target": "1001"}, "extension", "", "1001"),
    ({"target_name": "quickstart-phone"}, "extension", None, "quickstart-phone"),
])
def test_type_is_inferred_from_the_target(address: dict[str, str], kind: str, target: str | None,
                                          target_name: str | None) -> None:
    out = infer_type(address, "source")
    assert out["type"] == kind
    if target is not None:
        assert out["target"] == target
    if target_name is not None:
        assert out["target_name"] == target_name


@pytest.mark.parametrize("address", [
    {"target": "15551234567"},       # a phone number without + or an extension number?
    {"target": "+1 555 123"},
    {"target": "a b"},
    {"target": ""},
    {},
])
def test_ambiguous_targets_are_400_naming_the_type(address: dict[str, str]) -> None:
    with pytest.raises(InvalidArgument) as err:
        infer_type(address, "destinations[2]")
    assert err.value.field == "destinations[2].type" and "destinations[2].type" in err.value.message


def test_a_given_type_is_kept() -> None:
    assert infer_type({"type": "tel", "target": "quickstart1"}, "source") == {"type": "tel", "target": "quickstart1"}
    assert infer_type("not an object", "source") == "not an object"


async def test_post_calls_with_targets_only(client: httpx.AsyncClient, admin_token: str, runtime) -> None:  # type: ignore[no-untyped-def]
    q = {"token": admin_token}
    r = await client.post("/v1.0/extensions", params=q, json={
        "name": "untyped-phone", "detail": "", "extension": "untyped1", "password": "untyped-pass-1"})
    assert r.status_code == 200, r.text
    r = await client.post("/v1.0/calls", params=q, json={
        "source": {"target": runtime.seed.number}, "destinations": [{"target": "untyped1"}],
        "actions": [{"type": "hangup"}]})
    assert r.status_code == 200, r.text
    call = r.json()["calls"][0]
    assert call["source"]["type"] == "tel" and call["destination"]["type"] == "extension"
    assert call["destination"]["target"] == r.json()["groupcalls"][0]["destinations"][0]["target"]
    r = await client.post("/v1.0/calls", params=q, json={
        "source": {"target": runtime.seed.number}, "destinations": [{"target": "15551234567"}],
        "actions": [{"type": "hangup"}]})
    assert r.status_code == 400
    assert r.json()["error"]["message"].startswith("destinations[0].type is required")


async def test_extension_accepts_empty_name_and_detail_but_not_absent(client: httpx.AsyncClient,
                                                                       admin_token: str, spec) -> None:  # type: ignore[no-untyped-def]
    q = {"token": admin_token}
    r = await client.post("/v1.0/extensions", params=q,
                          json={"name": "", "detail": "", "extension": "blank1", "password": "blank-pass-1"})
    assert r.status_code == 200, r.text
    spec.validate("RegistrarManagerExtension", r.json())
    assert r.json()["name"] == "" and r.json()["detail"] == ""
    r = await client.post("/v1.0/extensions", params=q,
                          json={"name": "", "extension": "blank2", "password": "blank-pass-2"})
    assert r.status_code == 400 and r.json()["message"] == "detail is required"
    r = await client.post("/v1.0/extensions", params=q,
                          json={"name": "n", "detail": "d", "extension": "", "password": "blank-pass-3"})
    assert r.status_code == 400 and "extension" in r.json()["message"]
