"""Restart recovery of conference participants across media pods (voipbin.calls.recovery, issue 19):
real ``voipbin serve`` processes (an api pod, two media pods, a worker pod that reaps dead pods) on one
PostgreSQL and NATS; the carrier (our UA on the trunk port) calls the number on each media pod and
both calls join one room, mixed on one pod, the other pod's call through a pod leg.

* The pod that holds the leg's call is SIGKILLed: the worker ends its call and its participant
  (``conferencecall_leaving``, ``conferencecall_leaved``, once each although the room's pod also
  leaves it when the leg's RTP stops), the room's list drops it, and the room, on the live pod,
  goes on with its own caller.
* The pod that mixes the room is SIGKILLed: everyone in the room left, the other pod's caller too
  (its row ``leaved``); that call was not the dead pod's, so it is not ended as lost."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import pytest

from cluster_support import Cluster, Pod, Seen
from conference_support import Carrier, call_number, of_conference, pod_of, room_behind_number
from voipbin.sip.ua import UserAgent

pytestmark = [pytest.mark.postgres, pytest.mark.nats, pytest.mark.slow, pytest.mark.sip_peer]

#: pod expiry (8 s) + a heartbeat (2 s) + margin for a loaded machine
REAPED_WITHIN_S = 30


async def _room(cluster: Cluster, seen: Seen, trunk: UserAgent
                ) -> tuple[httpx.AsyncClient, dict[str, Any], dict[str, tuple[Pod, Carrier]], list[Carrier]]:
    """A room with one caller on each media pod; returns the API client, the conference and, by
    pod role (``mixer``/``remote``), the pod and its caller."""
    trunk_env = {"VOIPBIN_TRUNK_URI": f"sip:127.0.0.1:{trunk.stack.port}",
                 "VOIPBIN_TRUNK_ALLOWED_HOSTS": f"127.0.0.1:{trunk.stack.port}"}
    seed = await cluster.seed()
    api_pod, m1, m2, _worker = await asyncio.gather(
        cluster.start("api"), cluster.start("media", env=trunk_env), cluster.start("media", env=trunk_env),
        cluster.start("worker"))
    api = httpx.AsyncClient(base_url=api_pod.base_url, params={"token": await api_pod.login()}, timeout=30)
    conference = await room_behind_number(api, seed.number, "recovery")
    on_1 = await call_number(trunk, m1.sip_port, seed.number, 440)
    on_2 = await call_number(trunk, m2.sip_port, seed.number, 1000)
    await seen.until(lambda: len(of_conference(seen, "conferencecall_joined", conference["id"])) == 2, 30)
    mixer = m1.pod_id == await pod_of(cluster, "conferences", conference["id"])
    pods = {"mixer": (m1, on_1), "remote": (m2, on_2)} if mixer else {"mixer": (m2, on_2), "remote": (m1, on_1)}
    return api, conference, pods, [on_1, on_2]


async def _split(cluster: Cluster, api: httpx.AsyncClient, conference_id: str, dead: Pod
                 ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the participant whose call ``dead`` holds, the other one)."""
    members = (await api.get("/v1.0/conferencecalls", params={"conference_id": conference_id})).json()["result"]
    assert len(members) == 2, members
    held = [await pod_of(cluster, "calls", m["reference_id"]) == dead.pod_id for m in members]
    assert sorted(held) == [False, True], held
    return (members[0], members[1]) if held[0] else (members[1], members[0])


async def test_a_dead_pods_caller_leaves_a_room_mixed_on_a_live_pod(cluster: Cluster, seen: Seen,
                                                                    trunk: UserAgent) -> None:
    api, conference, pods, calls = await _room(cluster, seen, trunk)
    try:
        remote_pod, _ = pods["remote"]
        lost, stays = await _split(cluster, api, conference["id"], remote_pod)
        remote_pod.kill()

        # the worker (the call's pod expired) and the room's pod (the leg's RTP stopped) both end it: once
        await seen.until(lambda: bool(seen.of("call_hangup", lost["reference_id"])
                                      and seen.of("conferencecall_leaved", lost["id"])), REAPED_WITHIN_S)
        assert Counter(e.event_type for e in seen.events if e.resource_id == lost["id"]) == {
            "conferencecall_joining": 1, "conferencecall_joined": 1, "conferencecall_leaving": 1,
            "conferencecall_leaved": 1}
        call = (await api.get(f"/v1.0/calls/{lost['reference_id']}")).json()
        assert (call["status"], call["hangup_reason"]) == ("hangup", "failed")  # lost with its pod
        room = (await api.get(f"/v1.0/conferences/{conference['id']}")).json()
        assert (room["status"], room["conferencecall_ids"]) == ("progressing", [stays["id"]])
        assert (await api.get(f"/v1.0/conferencecalls/{stays['id']}")).json()["status"] == "joined"
    finally:
        await api.aclose()
        for c in calls:
            c.rtp.close()


async def test_a_dead_mixers_room_loses_the_live_pods_caller_too(cluster: Cluster, seen: Seen,
                                                                 trunk: UserAgent) -> None:
    api, conference, pods, calls = await _room(cluster, seen, trunk)
    try:
        mixer_pod, _ = pods["mixer"]
        lost, remote = await _split(cluster, api, conference["id"], mixer_pod)
        mixer_pod.kill()

        for member in (lost, remote):
            await seen.until(lambda m=member: bool(seen.of("conferencecall_leaved", m["id"])), REAPED_WITHIN_S)
        room = (await api.get(f"/v1.0/conferences/{conference['id']}")).json()
        assert (room["status"], room["conferencecall_ids"]) == ("progressing", [])  # a conference room stays up
        call = (await api.get(f"/v1.0/calls/{remote['reference_id']}")).json()
        assert call["hangup_reason"] != "failed", call  # the live pod's call was not lost
    finally:
        await api.aclose()
        for c in calls:
            c.rtp.close()
