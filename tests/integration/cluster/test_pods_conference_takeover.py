"""A pod leg whose room's pod died, the room taken over by another pod (issue 19): real ``voipbin
serve`` processes (an api pod, three media pods) on one PostgreSQL and NATS, no worker (nothing
reaps the dead pod); the carrier (our UA on the trunk port) calls the number on each media pod.

The room is mixed on pod A; a call held by pod B is in it through a pod leg. A is SIGKILLed. Once
A's heartbeat has expired, a call on pod C joins the room and C takes it over. B's leg carries no
more RTP: B hangs it up, closes its participant itself (``leaving``, ``leaved``, once each; out of the
room's list) and its call goes on with its flow (nothing left: it hangs up, ``normal``). Restart
recovery could not have closed that participant: the room is C's now, and B and its call are alive."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from cluster_support import Cluster, Seen
from conference_support import call_number, of_conference, pod_of, room_behind_number
from voipbin.sip.ua import UserAgent

pytestmark = [pytest.mark.postgres, pytest.mark.nats, pytest.mark.slow, pytest.mark.sip_peer]

POD_EXPIRE_S = 8.0  # Settings.pod_expire_seconds (default): also the pod leg's RTP timeout
#: B notices the silent leg after POD_EXPIRE_S, then its BYE waits ua.bye_wait_s; margin for a loaded machine
LEFT_WITHIN_S = 40


async def test_a_pod_leg_into_a_room_taken_over_leaves_on_the_calls_pod(cluster: Cluster, seen: Seen,
                                                                         trunk: UserAgent) -> None:
    trunk_env = {"VOIPBIN_TRUNK_URI": f"sip:127.0.0.1:{trunk.stack.port}",
                 "VOIPBIN_TRUNK_ALLOWED_HOSTS": f"127.0.0.1:{trunk.stack.port}"}
    seed = await cluster.seed()
    api_pod, *media = await asyncio.gather(cluster.start("api"), *(cluster.start("media", env=trunk_env)
                                                                  for _ in range(3)))
    api = httpx.AsyncClient(base_url=api_pod.base_url, params={"token": await api_pod.login()}, timeout=30)
    calls: list[Any] = []
    try:
        conference = await room_behind_number(api, seed.number, "takeover")
        mixer_id = await pod_of(cluster, "conferences", conference["id"])
        a = next(p for p in media if p.pod_id == mixer_id)
        b, c = (p for p in media if p is not a)

        on_b = await call_number(trunk, b.sip_port, seed.number, 1000)
        calls.append(on_b)
        await seen.until(lambda: bool(of_conference(seen, "conferencecall_joined", conference["id"])), 30)
        cc_b = of_conference(seen, "conferencecall_joined", conference["id"])[0]
        b_call = cc_b.data["reference_id"]

        a.kill()
        # A's heartbeat expires (nothing reaps it): C's caller joins and C takes the room over
        while (row := await cluster.pod_row(a.pod_id)) is not None and (
                datetime.now(UTC) - row["tm_heartbeat"].replace(tzinfo=UTC)).total_seconds() <= POD_EXPIRE_S + 0.5:
            await asyncio.sleep(0.2)  # a heartbeat's age in the database: no event to await
        on_c = await call_number(trunk, c.sip_port, seed.number, 440)
        calls.append(on_c)
        await seen.until(lambda: len(of_conference(seen, "conferencecall_joined", conference["id"])) == 2, 30)
        cc_c = of_conference(seen, "conferencecall_joined", conference["id"])[1].resource_id
        assert await pod_of(cluster, "conferences", conference["id"]) == c.pod_id

        # B's leg is silent: B closes its participant, and its call goes on with its flow (it ends)
        await seen.until(lambda: bool(seen.of("conferencecall_leaved", cc_b.resource_id)
                                      and seen.of("call_hangup", b_call)), LEFT_WITHIN_S)
        await asyncio.wait_for(on_b.ended.wait(), 10)  # the carrier got B's BYE
        assert Counter(e.event_type for e in seen.events if e.resource_id == cc_b.resource_id) == {
            "conferencecall_joining": 1, "conferencecall_joined": 1, "conferencecall_leaving": 1,
            "conferencecall_leaved": 1}
        call = (await api.get(f"/v1.0/calls/{b_call}")).json()
        assert call["hangup_reason"] == "normal", call  # its flow ended it, it was not lost
        room = (await api.get(f"/v1.0/conferences/{conference['id']}")).json()
        assert (room["status"], room["conferencecall_ids"]) == ("progressing", [cc_c])
        assert (await api.get(f"/v1.0/conferencecalls/{cc_c}")).json()["status"] == "joined"
    finally:
        await api.aclose()
        for call_ in calls:
            call_.rtp.close()
