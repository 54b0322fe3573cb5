"""The call's side of a pod leg (issue 19) when the room's pod goes away: the call's pod closes the
participant itself and the call goes on with its flow, as after a kick.

This process (``pod-b``) holds the call; the room is mixed on ``pod-a``, a live media pod in
``pods`` that exists only as that row: its side of the pod leg is a scripted leg
(:mod:`tests_support.fake_legs`, real RTP on 127.0.0.1) that answers and then goes silent, hangs up,
or never answers. Restart recovery cannot end such a participant once another live pod has taken
the room over (the room no longer looks dead), so nobody else would. The room's pod closing the row
first (a kick) leaves the call's pod nothing to do: the events come once. On PostgreSQL and NATS
(the only setup with pod legs)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import update

from tests_support.events import Events
from tests_support.fake_legs import FakeLeg, FakeOriginator
from voipbin.common.clock import utcnow
from voipbin.conferences.status import ConferencecallStatus
from voipbin.config import Settings
from voipbin.pods.legs import POD_LEG_HEADER, PodLegs
from voipbin.store.models import Conference, Pod

pytestmark = [pytest.mark.postgres, pytest.mark.nats]

NATS_URL = "nats://127.0.0.1:4222"
ROOM_POD = "pod-a"
ROOM_POD_SIP = ("127.0.0.1", 5999)  # nothing listens there: pod-a's legs are scripted
#: no RTP on the leg for this long: pod-a is gone (the runtime uses the pod expiry, 8 s)
LEG_RTP_TIMEOUT_S = 0.5
#: pod-a does not answer the INVITE within this (the runtime: DIAL_TIMEOUT_S, 10 s)
DIAL_TIMEOUT_S = 0.5
POST_FLOW_MS = 222  # the room's post-flow: a sleep of this many ms
NEXT_MS = 600000  # the call's own flow after the join: a sleep of this many ms


@pytest.fixture
def settings(postgres_url: str) -> Settings:
    return Settings(database_url=postgres_url, bus_url=NATS_URL, webhook_allow_private=True,  # type: ignore[call-arg]
                    sip_port=0, call_ring_timeout_seconds=30, rtp_timeout_seconds=30, webhook_worker=False,
                    pod_id="pod-b", role="media", pod_expire_seconds=600, _env_file=None)


@pytest_asyncio.fixture
async def room(client: httpx.AsyncClient, admin_token: str, runtime: Any, originator: FakeOriginator,
               phone: dict[str, Any]) -> dict[str, Any]:
    """A ``conference`` room with a post-flow, mixed on pod-a (a live media pod); this runtime dials
    its pod legs with ``originator``."""
    t = {"token": admin_token}
    r = await client.post("/v1.0/flows", params=t, json={
        "name": "post", "actions": [{"type": "sleep", "option": {"duration": POST_FLOW_MS}}]})
    assert r.status_code == 200, r.text
    r = await client.post("/v1.0/conferences", params=t, json={
        "type": "conference", "name": "across", "detail": "", "post_flow_id": r.json()["id"]})
    assert r.status_code == 200, r.text
    conference = r.json()
    async with runtime.sessions() as db, db.begin():
        db.add(Pod(id=ROOM_POD, role="media", sip_host=ROOM_POD_SIP[0], sip_port=ROOM_POD_SIP[1],
                   tm_heartbeat=utcnow()))
        await db.execute(update(Conference).where(Conference.id == conference["id"]).values(pod_id=ROOM_POD))
    runtime.conferences.use_pod_legs(PodLegs(
        runtime.pod_directory, originator, pod_id="pod-b", ports=runtime.rtp_ports, rtp_host="127.0.0.1",
        advertised_host="127.0.0.1", rtp_timeout_s=LEG_RTP_TIMEOUT_S, dial_timeout_s=DIAL_TIMEOUT_S))
    return conference


async def _join(client: httpx.AsyncClient, token: str, runtime: Any, originator: FakeOriginator,
                conference_id: str) -> tuple[dict[str, Any], FakeLeg]:
    """A call answered on this pod whose flow joins the room, then sleeps: (the call, its pod leg to pod-a).
    A stored flow: ``POST /calls`` with the join inline would be placed on the room's pod."""
    r = await client.post("/v1.0/flows", params={"token": token}, json={"name": "join", "actions": [
        {"type": "conference_join", "option": {"conference_id": conference_id}},
        {"type": "sleep", "option": {"duration": NEXT_MS}}]})
    assert r.status_code == 200, r.text
    r = await client.post("/v1.0/calls", params={"token": token}, json={
        "source": {"type": "tel", "target": runtime.seed.number},
        "destinations": [{"type": "extension", "target_name": "quickstart-phone"}], "flow_id": r.json()["id"]})
    assert r.status_code == 200, r.text
    call = r.json()["calls"][0]
    await (await originator.next_leg()).answer()
    pod_leg = await originator.next_leg()
    assert pod_leg.target.request_uri == f"sip:conference-{conference_id}@{ROOM_POD_SIP[0]}:{ROOM_POD_SIP[1]}"
    return call, pod_leg


async def _connected(runtime: Any, pod_leg: FakeLeg, *, sends: bool) -> str:
    """Pod-a answers the leg (its RTP flowing or not) and marks the participant ``joined``, as its
    room does; returns the conferencecall id."""
    cc_id = pod_leg.target.headers[POD_LEG_HEADER]
    await pod_leg.answer(phone_sends=sends)
    await runtime.conferences.records.move_conferencecall(cc_id, ConferencecallStatus.JOINED)
    return cc_id


async def _went_on(events: Events, call_id: str) -> None:
    """The call ran the room's post-flow, then the next action of its own flow."""
    for ms in (POST_FLOW_MS, NEXT_MS):
        await events.next("call_updated", call_id, where=lambda e, ms=ms: e.data["action"]["type"] == "sleep"
                          and e.data["action"]["option"]["duration"] == ms)


async def _members(client: httpx.AsyncClient, token: str, conference_id: str) -> list[str]:
    r = await client.get(f"/v1.0/conferences/{conference_id}", params={"token": token})
    return list(r.json()["conferencecall_ids"])


async def test_the_leg_goes_silent_the_calls_pod_closes_the_participant(
        client: httpx.AsyncClient, admin_token: str, runtime: Any, originator: FakeOriginator, events: Events,
        room: dict[str, Any]) -> None:
    call, pod_leg = await _join(client, admin_token, runtime, originator, room["id"])
    cc_id = await _connected(runtime, pod_leg, sends=False)  # pod-a answers, then dies: no RTP
    assert await _members(client, admin_token, room["id"]) == [cc_id]

    await asyncio.wait_for(pod_leg.byed.wait(), 10)  # no RTP for LEG_RTP_TIMEOUT_S: the call's pod hangs up
    left = await events.next("conferencecall_leaved", cc_id)
    assert left.data["status"] == "leaved"
    await _went_on(events, call["id"])
    assert events.types(cc_id) == ["conferencecall_joining", "conferencecall_joined", "conferencecall_leaving",
                                   "conferencecall_leaved"]
    assert await _members(client, admin_token, room["id"]) == []
    r = await client.get(f"/v1.0/calls/{call['id']}", params={"token": admin_token})
    assert r.json()["status"] == "progressing", r.text  # the call is up, in its own flow


async def test_a_bye_from_a_room_pod_that_closed_nothing_closes_the_participant(
        client: httpx.AsyncClient, admin_token: str, runtime: Any, originator: FakeOriginator, events: Events,
        room: dict[str, Any]) -> None:
    call, pod_leg = await _join(client, admin_token, runtime, originator, room["id"])
    cc_id = await _connected(runtime, pod_leg, sends=True)
    pod_leg.remote_bye()  # pod-a hangs up as it goes away, its row left joined
    await events.next("conferencecall_leaved", cc_id)
    await _went_on(events, call["id"])
    assert await _members(client, admin_token, room["id"]) == []


async def test_a_kick_on_the_room_pod_is_not_closed_again(
        client: httpx.AsyncClient, admin_token: str, runtime: Any, originator: FakeOriginator, events: Events,
        room: dict[str, Any]) -> None:
    call, pod_leg = await _join(client, admin_token, runtime, originator, room["id"])
    cc_id = await _connected(runtime, pod_leg, sends=True)
    await runtime.conferences.records.close_conferencecall(room["id"], cc_id)  # pod-a's kick: closed, then BYE
    pod_leg.remote_bye()
    await _went_on(events, call["id"])  # after the call's pod's own close, which found it leaved
    assert events.types(cc_id) == ["conferencecall_joining", "conferencecall_joined", "conferencecall_leaving",
                                   "conferencecall_leaved"]
    lists = [e.data["conferencecall_ids"] for e in events.seen
             if e.event_type == "conference_updated" and e.resource_id == room["id"]]
    assert lists == [[], [cc_id], []], lists  # progressing, the join, the one leave


async def test_an_unanswered_invite_is_a_leave(
        client: httpx.AsyncClient, admin_token: str, runtime: Any, originator: FakeOriginator, events: Events,
        room: dict[str, Any]) -> None:
    call, pod_leg = await _join(client, admin_token, runtime, originator, room["id"])
    cc_id = pod_leg.target.headers[POD_LEG_HEADER]
    # pod-a died before answering: after DIAL_TIMEOUT_S the INVITE is cancelled
    await asyncio.wait_for(pod_leg.cancelled.wait(), 10)
    await events.next("conferencecall_leaved", cc_id)
    await _went_on(events, call["id"])
    assert events.types(cc_id) == ["conferencecall_joining", "conferencecall_leaving", "conferencecall_leaved"]
    assert not [e for e in events.seen if e.event_type == "activeflow_action_failed"]
    assert await _members(client, admin_token, room["id"]) == []


async def test_a_refused_invite_still_fails_the_join(
        client: httpx.AsyncClient, admin_token: str, runtime: Any, originator: FakeOriginator, events: Events,
        room: dict[str, Any]) -> None:
    call, pod_leg = await _join(client, admin_token, runtime, originator, room["id"])
    cc_id = pod_leg.target.headers[POD_LEG_HEADER]
    pod_leg.reject(404)  # pod-a is up and says the participant is not joining there
    failed = await events.next("activeflow_action_failed", where=lambda e: e.data["reference_id"] == call["id"])
    assert "option.conference_id" in str(failed.data), failed.data
    await events.next("call_updated", call["id"], where=lambda e: e.data["action"]["type"] == "sleep"
                      and e.data["action"]["option"]["duration"] == NEXT_MS)
    assert events.types(cc_id) == ["conferencecall_joining", "conferencecall_leaving", "conferencecall_leaved"]


async def test_two_pods_closing_one_participant_at_once_publish_its_leave_once(
        runtime: Any, events: Events, room: dict[str, Any]) -> None:
    """The room's pod and the call's pod close a pod leg's participant at the same moment (a kick's
    BYE crossing the call's hangup): the row lock lets one of them leave it."""
    conference = await runtime.conferences.records.load(room["id"])
    cc_id = "7f0c8d52-4a9b-4c1e-9a43-2f3d7f1d6a10"
    records = runtime.conferences.records
    await records.new_conferencecall(conference, "call-elsewhere", "", conferencecall_id=cc_id)
    await records.move_conferencecall(cc_id, ConferencecallStatus.JOINED)
    assert await asyncio.gather(*(records.close_conferencecall(room["id"], cc_id) for _ in range(4))) == [True] * 4
    await events.next("conferencecall_leaved", cc_id)
    marker = await records.change(room["id"], "conference_updated", name="after")  # published after every close
    await events.next("conference_updated", room["id"], where=lambda e: e.data["name"] == "after")
    assert events.types(cc_id) == ["conferencecall_joining", "conferencecall_joined", "conferencecall_leaving",
                                   "conferencecall_leaved"]
    updates = [e for e in events.seen if e.event_type == "conference_updated" and e.resource_id == room["id"]
               and e.data["name"] != "after"]
    assert [e.data["conferencecall_ids"] for e in updates][-2:] == [[cc_id], []], updates  # added, removed once
    assert marker.conferencecall_ids == []
