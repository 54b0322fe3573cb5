"""Call lifecycle rules of issue 14/21 in-process (scripted legs, real RTP on 127.0.0.1):

* draining: POST /calls is a 503 in the upstream envelope, an INVITE gets 503 + Retry-After, live
  calls are hung up (BYE) with ``local``/``normal``;
* an inbound call's flow runs an action that needs the answer only once ``progressing`` is stored
  and published (``answer`` -> ``transcribe_start`` never sees ``ringing``);
* an action that cannot run publishes ``activeflow_action_failed`` and the flow goes on;
* a stored call that no live process drives (its process died) is ended by hangup/DELETE.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from tests_support.fake_legs import FakeLeg
from voipbin.calls import hangup as hangups
from voipbin.calls.leg import DialTarget
from voipbin.common.errors import InvalidArgument
from voipbin.flows.actions import normalize_actions
from voipbin.store.models import Call, Flow

SLEEP = [{"type": "sleep", "option": {"duration": 60000}}]


def body(runtime: Any, actions: list[dict[str, Any]]) -> dict[str, Any]:
    return {"source": {"type": "tel", "target": runtime.seed.number},
            "destinations": [{"type": "extension", "target_name": "quickstart-phone"}], "actions": actions}


class FakeInboundLeg(FakeLeg):
    """The UAS side of an inbound call: ``answer()`` sends the 200; the ACK (answered) follows later."""

    reject_code: int | None = None

    def __init__(self) -> None:
        super().__init__(DialTarget(request_uri="sip:x@127.0.0.1", to_uri="sip:x@127.0.0.1",
                                    from_uri="sip:y@127.0.0.1"), None)  # type: ignore[arg-type]

    def attach(self, listener: Any) -> None:
        self.listener = listener

    async def answer(self, *, phone_sends: bool = True) -> None:  # the ACK comes one loop turn later
        asyncio.get_running_loop().call_soon(asyncio.ensure_future, FakeLeg.answer(self, phone_sends=phone_sends))


class RecordingTranscribes:
    """A TranscribeControl that records the stored call status at start, or fails as told."""

    def __init__(self, runtime: Any, fail: Exception | None = None) -> None:
        self.runtime, self.fail = runtime, fail
        self.seen: list[tuple[str, bool]] = []

    async def start_for_call(self, customer_id: str, call_id: str, **_: Any) -> None:
        if self.fail is not None:
            raise self.fail
        stored = await self.runtime.calls.get(customer_id, call_id)
        self.seen.append((stored.status, self.runtime.calls.media_of(call_id) is not None))

    async def stop_for_call(self, customer_id: str, call_id: str) -> None:
        pass


async def incoming(runtime: Any, actions: list[dict[str, Any]]) -> tuple[Any, FakeInboundLeg]:
    flow = Flow(id=str(uuid.uuid4()), customer_id=runtime.seed.customer_id, persist=False,
                actions=normalize_actions(actions))
    leg = FakeInboundLeg()
    lc = await runtime.calls.create_incoming(runtime.seed.customer_id, source={"type": "tel", "target": "+15550001111"},
                                             destination={"type": "tel", "target": runtime.seed.number},
                                             flow=flow, leg=leg)
    return lc, leg


async def test_answer_then_transcribe_start_always_sees_a_progressing_call(runtime: Any, events: Any) -> None:
    control = RecordingTranscribes(runtime)
    runtime.calls._flow_context.transcribes = control
    actions = [{"type": "answer"}, {"type": "transcribe_start", "option": {"language": "en-US"}}, *SLEEP]
    calls = [await incoming(runtime, actions) for _ in range(10)]
    def at_sleep(activeflow_id: str) -> bool:
        return any(e.event_type == "activeflow_updated" and e.resource_id == activeflow_id
                   and e.data["current_action"]["type"] == "sleep" for e in events.seen)

    while not all(at_sleep(lc.activeflow_id) for lc, _ in calls):
        await events.next("activeflow_updated")
    assert control.seen == [("progressing", True)] * 10
    for lc, _ in calls:
        assert "call_progressing" in events.types(lc.call_id)
        assert "activeflow_action_failed" not in events.types(lc.activeflow_id)
        await runtime.calls.end_call(lc.call_id, hangups.LOCAL_BYE)


async def test_an_action_that_cannot_run_publishes_an_error_event_and_the_flow_goes_on(
        runtime: Any, events: Any) -> None:
    runtime.calls._flow_context.transcribes = RecordingTranscribes(
        runtime, fail=InvalidArgument("language: no engine serves ko-KR", field="language"))
    actions = [{"type": "answer"}, {"type": "transcribe_start", "option": {"language": "en-US"}},
               {"type": "hangup"}]
    lc, _ = await incoming(runtime, actions)
    failed = await events.next("activeflow_action_failed", lc.activeflow_id)
    assert failed.data["error"]["action_type"] == "transcribe_start"
    assert "ko-KR" in failed.data["error"]["message"] and failed.data["id"] == lc.activeflow_id
    hangup = await events.next("call_hangup", lc.call_id)  # the next action (hangup) ran
    assert hangup.data["hangup_by"] == "local"


async def test_draining_refuses_new_calls_and_byes_live_ones(client: httpx.AsyncClient, admin_token: str,
                                                             runtime: Any, phone: dict[str, Any], originator: Any,
                                                             events: Any) -> None:
    r = await client.post("/v1.0/calls", params={"token": admin_token}, json=body(runtime, SLEEP))
    call = r.json()["calls"][0]
    leg = await originator.next_leg()
    await leg.answer()
    await events.next("call_progressing", call["id"])

    rejected: list[tuple[int, list[tuple[str, str]]]] = []

    class Invite:
        def reject(self, status: int, reason: str | None = None, headers: list[tuple[str, str]] | None = None
                   ) -> None:
            rejected.append((status, headers or []))

    took = await runtime.drain(grace_seconds=5)
    assert took < 5 and leg.byed.is_set()
    hangup = await events.next("call_hangup", call["id"])
    assert (hangup.data["hangup_by"], hangup.data["hangup_reason"]) == ("local", "normal")
    r = await client.post("/v1.0/calls", params={"token": admin_token}, json=body(runtime, SLEEP))
    assert r.status_code == 503, r.text
    assert r.json()["error"]["status"] == "UNAVAILABLE"
    await runtime._incoming_invite(Invite())
    assert rejected == [(503, [("Retry-After", "30")])]


async def test_a_call_whose_process_died_is_ended_by_hangup_and_delete(client: httpx.AsyncClient, admin_token: str,
                                                                       runtime: Any, events: Any) -> None:
    """A row left ``progressing`` by a process that is gone (no live leg here, its pod expired)."""
    cid = runtime.seed.customer_id
    ids = [str(uuid.uuid4()), str(uuid.uuid4())]
    async with runtime.sessions() as s, s.begin():
        for call_id in ids:
            s.add(Call(id=call_id, customer_id=cid, status="progressing", pod_id="pod-gone", source={},
                       destination={}, action={}, data={}))
    q = {"token": admin_token}
    r = await client.post(f"/v1.0/calls/{ids[0]}/hangup", params=q)
    assert r.status_code == 200 and (r.json()["status"], r.json()["hangup_reason"]) == ("hangup", "failed")
    assert (await events.next("call_hangup", ids[0])).data["hangup_by"] == "local"
    r = await client.delete(f"/v1.0/calls/{ids[1]}", params=q)
    assert r.status_code == 200 and r.json()["status"] == "hangup" and r.json()["tm_delete"] is not None
