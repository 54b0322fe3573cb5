"""The upstream operations added for client compatibility, on live calls with scripted legs
(:mod:`tests_support.fake_legs`, real RTP on 127.0.0.1): activeflow stop/delete, groupcall
create/hangup/delete, call talk and silence; extension direct-hash regeneration, number flow ids."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import numpy as np
import pytest
import pytest_asyncio

from tests_support.events import Events
from tests_support.fake_legs import FakeLeg, FakeOriginator, register
from voipbin.config import Settings
from voipbin.events.bus import event_queue

SLEEP = [{"type": "sleep", "option": {"duration": 60000}}]


@pytest.fixture
def originator() -> FakeOriginator:
    return FakeOriginator()


@pytest_asyncio.fixture
async def runtime(settings: Settings, originator: FakeOriginator) -> AsyncIterator[Any]:
    from voipbin.runtime import Runtime

    rt = Runtime(settings, originator=originator)
    await rt.start()
    rt.seed = await rt.seed_sandbox()
    try:
        yield rt
    finally:
        await rt.stop()


@pytest_asyncio.fixture
async def events(runtime: Any) -> AsyncIterator[Events]:
    queue, sub = await event_queue(runtime.bus, f"customer_id:{runtime.seed.customer_id}")
    yield Events(queue, timeout=15)
    await sub.unsubscribe()


@pytest_asyncio.fixture
async def phone(client: httpx.AsyncClient, admin_token: str, runtime: Any) -> dict[str, Any]:
    r = await client.post("/v1.0/extensions", params={"token": admin_token}, json={
        "name": "compat-phone", "detail": "", "extension": "compat1", "password": "compat-pass-1"})
    assert r.status_code == 200, r.text
    await register(runtime, r.json(), "sip:compat1@127.0.0.1:35070", ("127.0.0.1", 35070))
    return r.json()  # type: ignore[no-any-return]


async def _answered_call(client: httpx.AsyncClient, token: str, runtime: Any, originator: FakeOriginator,
                         events: Events) -> tuple[dict[str, Any], FakeLeg]:
    r = await client.post("/v1.0/calls", params={"token": token}, json={
        "source": {"target": runtime.seed.number}, "destinations": [{"target_name": "compat-phone"}],
        "actions": SLEEP})
    assert r.status_code == 200, r.text
    call = r.json()["calls"][0]
    leg = await originator.next_leg()
    await leg.answer()
    await events.next("call_progressing", call["id"])
    return call, leg


async def test_activeflow_stop_ends_the_flow_and_the_call(client: httpx.AsyncClient, admin_token: str,
                                                          runtime: Any, phone: dict[str, Any],
                                                          originator: FakeOriginator, events: Events,
                                                          spec: Any) -> None:
    q = {"token": admin_token}
    call, leg = await _answered_call(client, admin_token, runtime, originator, events)
    r = await client.post(f"/v1.0/activeflows/{call['activeflow_id']}/stop", params=q)
    assert r.status_code == 200, r.text
    spec.validate("FlowManagerActiveflow", r.json())
    assert r.json()["status"] == "ended" and r.json()["tm_delete"] is None
    hangup = await events.next("call_hangup", call["id"])
    assert (hangup.data["hangup_by"], hangup.data["hangup_reason"]) == ("local", "normal") and leg.byed.is_set()
    again = await client.post(f"/v1.0/activeflows/{call['activeflow_id']}/stop", params=q)
    assert again.status_code == 200 and again.json()["status"] == "ended"
    r = await client.delete(f"/v1.0/activeflows/{call['activeflow_id']}", params=q)
    assert r.status_code == 200 and r.json()["tm_delete"] is not None
    assert (await client.post(f"/v1.0/activeflows/{call['id']}/stop", params=q)).status_code == 404


async def test_groupcall_create_hangup_delete(client: httpx.AsyncClient, admin_token: str, runtime: Any,
                                              phone: dict[str, Any], originator: FakeOriginator, events: Events,
                                              spec: Any) -> None:
    q = {"token": admin_token}
    await register(runtime, phone, "sip:compat1@127.0.0.1:35071", ("127.0.0.1", 35071))
    r = await client.post("/v1.0/groupcalls", params=q, json={
        "source": {"target": runtime.seed.number}, "destinations": [{"target": "compat1"}],
        "actions": SLEEP, "ring_method": "ring_all", "answer_method": "hangup_others"})
    assert r.status_code == 200, r.text
    group = r.json()
    spec.validate("CallManagerGroupcall", group)
    assert group["call_count"] == 2 and group["destinations"][0]["target"] == phone["id"]
    first, second = await originator.next_leg(), await originator.next_leg()
    await first.answer()
    await events.next("groupcall_progressing", group["id"])
    await asyncio.wait_for(second.cancelled.wait(), 5)
    r = await client.post(f"/v1.0/groupcalls/{group['id']}/hangup", params=q)
    assert r.status_code == 200 and r.json()["status"] in ("hangingup", "hangup")
    await events.next("groupcall_hangup", group["id"])
    assert first.byed.is_set()
    r = await client.delete(f"/v1.0/groupcalls/{group['id']}", params=q)
    assert r.status_code == 200 and r.json()["tm_delete"] is not None
    assert (await client.get(f"/v1.0/groupcalls/{group['id']}", params=q)).status_code == 404


@pytest.mark.parametrize(("change", "field"), [
    ({"destinations": [{"target": "compat1"}, {"target": "compat1"}]}, "destinations"),
    ({"destinations": [{"type": "sip", "target": "sip:bob@example.com"}]}, "destinations"),
    ({"ring_method": "linear"}, "ring_method"),
    ({"answer_method": None}, "answer_method"),
])
async def test_groupcall_create_rejects_what_it_does_not_do(client: httpx.AsyncClient, admin_token: str,
                                                            runtime: Any, phone: dict[str, Any],
                                                            originator: FakeOriginator, change: dict[str, Any],
                                                            field: str) -> None:
    body = {"source": {"target": runtime.seed.number}, "destinations": [{"target": "compat1"}],
            "actions": SLEEP, "ring_method": "", "answer_method": "", **change}
    r = await client.post("/v1.0/groupcalls", params={"token": admin_token}, json=body)
    assert r.status_code == 400 and field in r.json()["message"], r.text
    assert originator.all == []


async def test_talk_is_heard_and_needs_an_answered_call(client: httpx.AsyncClient, admin_token: str,
                                                        runtime: Any, phone: dict[str, Any],
                                                        originator: FakeOriginator, events: Events) -> None:
    q = {"token": admin_token}
    r = await client.post("/v1.0/calls", params=q, json={
        "source": {"target": runtime.seed.number}, "destinations": [{"target_name": "compat-phone"}],
        "actions": SLEEP})
    ringing = r.json()["calls"][0]
    leg = await originator.next_leg()
    r = await client.post(f"/v1.0/calls/{ringing['id']}/talk", params=q, json={"text": "Hello there."})
    assert r.status_code == 409 and r.json()["error"]["status"] == "FAILED_PRECONDITION"
    await leg.answer()
    await events.next("call_progressing", ringing["id"])
    for bad in ({"text": ""}, {"text": "x" * 5001}, {}):
        r = await client.post(f"/v1.0/calls/{ringing['id']}/talk", params=q, json=bad)
        assert r.status_code == 400 and "text" in r.json()["message"], bad
    r = await client.post(f"/v1.0/calls/{ringing['id']}/talk", params=q,
                          json={"text": "Hello there. This is a talk request.", "language": "en-US"})
    assert r.status_code == 200 and r.json()["id"] == ringing["id"]

    async def heard() -> None:
        while True:
            audio = np.frombuffer(bytes(leg.phone_audio), dtype="<i2").astype(np.float64)
            frames = audio[: len(audio) // 160 * 160].reshape(-1, 160)
            if (np.sqrt(np.mean(frames ** 2, axis=1)) > 300).sum() >= 25:  # 0.5 s of speech
                return
            await asyncio.sleep(0.1)
    await asyncio.wait_for(heard(), 20)


async def test_silence_mutes_both_ways(client: httpx.AsyncClient, admin_token: str, runtime: Any,
                                       phone: dict[str, Any], originator: FakeOriginator, events: Events) -> None:
    q = {"token": admin_token}
    call, _leg = await _answered_call(client, admin_token, runtime, originator, events)
    r = await client.post(f"/v1.0/calls/{call['id']}/silence", params=q)
    assert r.status_code == 200 and r.json()["mute_direction"] == "both"
    r = await client.delete(f"/v1.0/calls/{call['id']}/silence", params=q)
    assert r.status_code == 200 and r.json()["mute_direction"] == ""


async def test_extension_direct_hash_regenerate(client: httpx.AsyncClient, admin_token: str,
                                                phone: dict[str, Any], spec: Any) -> None:
    r = await client.post(f"/v1.0/extensions/{phone['id']}/direct-hash-regenerate", params={"token": admin_token})
    assert r.status_code == 200, r.text
    spec.validate("RegistrarManagerExtension", r.json())
    assert r.json()["direct_hash"].startswith("direct.") and r.json()["direct_hash"] != phone["direct_hash"]


async def test_number_flow_ids(client: httpx.AsyncClient, admin_token: str, runtime: Any, spec: Any) -> None:
    q = {"token": admin_token}
    number = (await client.get("/v1.0/numbers", params=q)).json()["result"][0]
    flow = "a1b2c3d4-e5f6-7890-1234-567890abcdef"
    r = await client.put(f"/v1.0/numbers/{number['id']}/flow_ids", params=q,
                         json={"call_flow_id": flow, "message_flow_id": ""})
    assert r.status_code == 200, r.text
    spec.validate("NumberManagerNumber", r.json())
    assert r.json()["call_flow_id"] == flow
    r = await client.put(f"/v1.0/numbers/{number['id']}/flow_ids", params=q, json={"call_flow_id": flow})
    assert r.status_code == 400 and r.json()["message"] == "message_flow_id is required"
