"""Inbound calls from the trunk, with our own UA playing the carrier: an owned number runs its flow
(answer, digits by RFC 4733, branch, digits_send back), an unowned one is refused with 404."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from voipbin.sip.stack import SipStack, StackConfig
from voipbin.sip.ua import UserAgent

from inbound_support import CALLER, number_with_flow, place_call



async def test_owned_number_runs_its_flow_with_rfc4733_digits(client: httpx.AsyncClient, admin_token: str,
                                                             runtime: Any, trunk: UserAgent, events: Any,
                                                             spec: Any) -> None:
    ok_id, bad_id = str(uuid.uuid4()), str(uuid.uuid4())
    await number_with_flow(client, admin_token, runtime, [
        {"type": "answer"},
        {"type": "digits_receive", "option": {"duration": 8000, "length": 5, "key": "#"}},
        {"type": "branch", "option": {"target_ids": {"42#": ok_id}, "default_target_id": bad_id}},
        {"id": bad_id, "type": "hangup", "option": {"reason": "failed"}},
        {"id": ok_id, "type": "digits_send", "option": {"digits": "7", "duration": 100}},
        {"type": "hangup", "option": {"reason": "normal"}},
    ])
    call = await place_call(trunk, runtime, runtime.seed.number)
    created = await events.next("call_created")
    data = created.data
    spec.validate("CallManagerCall", data)
    assert (data["direction"], data["status"]) == ("incoming", "ringing")
    assert data["source"]["type"] == "tel" and data["source"]["target"] == CALLER
    assert data["destination"]["target"] == runtime.seed.number
    await asyncio.wait_for(call.answered.wait(), 10)
    assert 180 in call.progress_codes
    await events.next("call_progressing", data["id"])

    await call.rtp.send_dtmf("42#", duration_ms=80, pause_ms=60)
    hangup = await events.next("call_hangup", data["id"], timeout=20)
    assert (hangup.data["hangup_by"], hangup.data["hangup_reason"]) == ("local", "normal")
    await asyncio.wait_for(call.ended.wait(), 10)
    assert call.ended_with == [("remote_bye", None)]
    assert call.digits == ["7"]  # digits_send reached the carrier as RFC 4733
    received = [e.data["digit"] for e in events.seen if e.event_type == "dtmf_received"]
    assert received == ["4", "2", "#"]

    af = (await client.get(f"/v1.0/activeflows/{data['activeflow_id']}", params={"token": admin_token})).json()
    assert [a["type"] for a in af["executed_actions"]] == [
        "answer", "digits_receive", "branch", "digits_send", "hangup"]
    call.rtp.close()


async def test_wrong_digits_take_the_default_branch(client: httpx.AsyncClient, admin_token: str, runtime: Any,
                                                   trunk: UserAgent, events: Any) -> None:
    ok_id, bad_id = str(uuid.uuid4()), str(uuid.uuid4())
    await number_with_flow(client, admin_token, runtime, [
        {"type": "digits_receive", "option": {"duration": 8000, "length": 1}},  # answers by itself
        {"type": "branch", "option": {"target_ids": {"1": ok_id}, "default_target_id": bad_id}},
        {"id": ok_id, "type": "hangup", "option": {"reason": "normal"}},
        {"id": bad_id, "type": "hangup", "option": {"reason": "busy"}},
    ])
    call = await place_call(trunk, runtime, runtime.seed.number)
    await asyncio.wait_for(call.answered.wait(), 10)
    await call.rtp.send_dtmf("9", duration_ms=80)
    hangup = await events.next("call_hangup", timeout=20)
    assert hangup.data["hangup_reason"] == "busy"
    call.rtp.close()


async def test_unowned_number_is_404_and_stores_nothing(client: httpx.AsyncClient, admin_token: str,
                                                       runtime: Any, trunk: UserAgent) -> None:
    call = await place_call(trunk, runtime, "+15559998888")
    await asyncio.wait_for(call.ended.wait(), 10)
    assert call.ended_with == [("rejected", 404)]
    assert (await client.get("/v1.0/calls", params={"token": admin_token})).json()["result"] == []
    assert (await client.get("/v1.0/activeflows", params={"token": admin_token})).json()["result"] == []
    call.rtp.close()


async def test_unknown_source_must_authenticate(runtime: Any, client: httpx.AsyncClient, admin_token: str) -> None:
    """A peer that is not the trunk is challenged (407) like any extension, even for an owned number."""
    stack = SipStack(StackConfig(host="127.0.0.1", port=0))
    await stack.start()
    agent = UserAgent(stack)
    try:
        call = await place_call(agent, runtime, runtime.seed.number)
        await asyncio.wait_for(call.ended.wait(), 10)
        assert call.ended_with in ([("rejected", 403)], [("rejected", 407)])
        call.rtp.close()
    finally:
        agent.close()
        await stack.stop()
    assert (await client.get("/v1.0/calls", params={"token": admin_token})).json()["result"] == []
