"""Events of one resource reach the webhook in the order they happened, retries included."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest_asyncio

from .conftest import LiveServer, Receiver, live_server, make_settings

FAST = {"webhook_retry_base_seconds": 0.05, "webhook_retry_max_seconds": 0.2, "webhook_timeout_seconds": 1.0}


@pytest_asyncio.fixture
async def fast_server(sqlite_url: str) -> AsyncIterator[LiveServer]:
    async with live_server(make_settings(sqlite_url, **FAST)) as live:
        yield live


def types_of(requests: list, resource_id: str) -> list[tuple[str, int | None]]:
    out = []
    for r in requests:
        doc = json.loads(r.body)
        if doc["data"].get("id") == resource_id:
            out.append((doc["type"], r.answered))
    return out


async def test_a_failed_first_attempt_of_event_1_still_arrives_before_event_2(
        fast_server: LiveServer, receiver: Receiver) -> None:
    async with fast_server.http() as http:
        r = await http.put("/v1.0/customer", json={"webhook_method": "POST", "webhook_uri": receiver.url})
        assert r.status_code == 200, r.text
        failed: list[int] = []

        def fail_first_created(n: int) -> int:  # the first attempt of event 1 fails (503, retried)
            if not failed and json.loads(receiver.requests[n].body)["type"] == "extension_created":
                failed.append(n)
                return 503
            return 200

        receiver.behave = fail_first_created
        created = await http.post("/v1.0/extensions", json={"name": "n", "detail": "d", "password": "phone-pass-1",
                                                            "extension": "7101"})
        assert created.status_code == 200, created.text
        ext_id = created.json()["id"]
        for i in range(3):
            r = await http.put(f"/v1.0/extensions/{ext_id}", json={"name": f"n{i}", "detail": "d"})
            assert r.status_code == 200, r.text
    reqs = await receiver.wait_until(
        lambda rs: [t for t, a in types_of(rs, ext_id) if a == 200].count("extension_updated") == 3)
    seen = types_of(reqs, ext_id)
    assert seen[:2] == [("extension_created", 503), ("extension_created", 200)]
    assert seen[2:] == [("extension_updated", 200)] * 3
    names = [json.loads(r.body)["data"]["name"] for r in reqs
             if json.loads(r.body)["type"] == "extension_updated"]
    assert names == ["n0", "n1", "n2"]
