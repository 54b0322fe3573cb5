"""A conference across media pods (issue 19): two media runtimes with real SIP on one PostgreSQL and
NATS, and a carrier (our own UA on the trunk port) whose calls land on different pods, as
Kamailio's dispatcher would spread them.

The room is mixed on pod A. A call that pod B holds joins it through a pod leg (an INVITE from B
to A carrying the conferencecall, :mod:`voipbin.pods.legs`): the two callers hear each other (a
tone each, measured by frequency); the call's hangup on B ends the leg and the participant on A;
a kick (sent to B's router, which routes it to A) releases the participant, ends the leg and
B's call goes on with its flow; an INVITE that names a participant but does not come from a pod
is refused (403) and makes no call, one from a pod naming a participant that is not joining too
(404); deleting the room (asked of B, run on A) releases A's caller."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import pytest_asyncio
from sqlalchemy import select

from cluster_support import Cluster, Seen
from conference_support import RATE_HZ, Carrier, call_number, of_conference, pod_of, room_behind_number
from tests_support.events import Events
from voipbin.config import Settings
from voipbin.events.bus import event_queue
from voipbin.media.session import RtpSession
from voipbin.pods.legs import POD_LEG_HEADER
from voipbin.runtime import Runtime
from voipbin.sip.ua import UserAgent
from voipbin.store.models import Call

pytestmark = [pytest.mark.postgres, pytest.mark.nats]

NATS_URL = os.environ.get("VOIPBIN_TEST_NATS_URL", "nats://127.0.0.1:4222")


def _settings(db_url: str, pod_id: str, trunk_port: int, rtp_low: int) -> Settings:
    return Settings(_env_file=None, database_url=db_url, bus_url=NATS_URL, role="media",  # type: ignore[call-arg]
                    pod_id=pod_id, sip_host="127.0.0.1", sip_port=0, rtp_port_min=rtp_low,
                    rtp_port_max=rtp_low + 98, trunk_uri=f"sip:127.0.0.1:{trunk_port}",
                    trunk_allowed_hosts=f"127.0.0.1:{trunk_port}", number_pool="+15550100000-+15550109999",
                    rtp_timeout_seconds=30, pod_heartbeat_seconds=1.0)


def dominant_hz(pcm: bytes) -> tuple[float, float]:
    """(dominant frequency in Hz, RMS) of 8 kHz PCM16."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * RATE_HZ / len(x)), float(np.sqrt(np.mean(x**2)))


@pytest_asyncio.fixture
async def pods(postgres_url: str, trunk: UserAgent) -> AsyncIterator[tuple[Runtime, Runtime]]:
    trunk_port = trunk.stack.port
    a = Runtime(_settings(postgres_url, "pod-a", trunk_port, 36000))
    b = Runtime(_settings(postgres_url, "pod-b", trunk_port, 36200))
    await a.start()
    await b.start()
    try:
        yield a, b
    finally:
        await b.stop()
        await a.stop()


async def _until(check: Any, what: str, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.05)  # in-process state of two runtimes (rooms, SIP sessions): polled
    assert check(), what


def _room_size(pod: Runtime, conference_id: str) -> int:
    room = pod.conferences.live_room(conference_id)
    return len(room.participants) if room is not None else 0


async def test_calls_on_two_pods_share_one_room_through_a_pod_leg(pods: tuple[Runtime, Runtime],
                                                                  trunk: UserAgent, tmp_path: Path) -> None:
    a, b = pods
    seed = await a.seed_sandbox()
    conference = await a.conferences.create(seed.customer_id, {"type": "conference"})
    assert conference.pod_id == "pod-a"
    flow = await a.flows.create(seed.customer_id, {"name": "room", "detail": "", "actions": [
        {"type": "answer"}, {"type": "conference_join", "option": {"conference_id": conference.id}}]})
    number = await a.numbers.find_active(seed.number)
    assert number is not None
    await a.numbers.update(seed.customer_id, number.id, {"call_flow_id": flow.id})
    queue, sub = await event_queue(b.bus.inner, f"customer_id:{seed.customer_id}")
    events = Events(queue, timeout=20)
    calls: list[Carrier] = []
    try:
        # one caller lands on pod A, the other on pod B: both in the room mixed on A, hearing each other
        on_a = await call_number(trunk, a, seed.number, 440)
        on_b = await call_number(trunk, b, seed.number, 1000)
        calls += [on_a, on_b]
        joined = {}
        while len(joined) < 2:
            e = await events.next("conferencecall_joined", where=lambda e: e.resource_id not in joined)
            joined[e.resource_id] = e.data["reference_id"]
        async with b.sessions() as db:
            rows = (await db.execute(select(Call.id, Call.pod_id))).all()
        pod_of = {call_id: pod_id for call_id, pod_id in rows}
        assert sorted(pod_of[c] for c in joined.values()) == ["pod-a", "pod-b"], pod_of
        assert _room_size(a, conference.id) == 2 and b.conferences.live_room(conference.id) is None
        await _hears(on_a, 440, on_b, 1000)

        # the caller on B hangs up: its leg ends, it leaves the room on A; A's caller stays
        cc_b = next(cc for cc, call_id in joined.items() if pod_of[call_id] == "pod-b")
        await on_b.session.bye()
        left = await events.next("conferencecall_leaved", cc_b)
        assert left.data["status"] == "leaved"
        await _until(lambda: _room_size(a, conference.id) == 1, "one participant left on A")
        await _until(lambda: not b.ua.sessions, "no SIP session left on B (call and pod leg gone)")
        await _until(lambda: len(a.ua.sessions) == 1, "only A's caller's session left on A")

        # another caller on B joins; a kick sent to B is routed to A: the leg ends, B's call goes on
        # with its flow (nothing left: it hangs up)
        again = await call_number(trunk, b, seed.number, 1000)
        calls.append(again)
        e = await events.next("conferencecall_joined", where=lambda e: e.resource_id != cc_b)
        cc_again = e.resource_id
        await b.pods.route("conferencecall", cc_again, "conferencecalls.kick", customer_id=seed.customer_id,
                           conferencecall_id=cc_again)
        await events.next("conferencecall_leaved", cc_again)
        await asyncio.wait_for(again.ended.wait(), 10)
        await _until(lambda: _room_size(a, conference.id) == 1, "the kicked leg is out of A's room")
        await _until(lambda: not b.ua.sessions, "no SIP session left on B after the kick")
        assert len(a.ua.sessions) == 1

        # an INVITE naming a participant from anything but a pod (here the carrier) is refused
        forged = await call_number(trunk, a, seed.number, 440, headers={POD_LEG_HEADER: cc_again})
        calls.append(forged)
        await asyncio.wait_for(forged.ended.wait(), 10)
        assert forged.status == 403 and not forged.answered.is_set()
        # from pod B itself, naming a conferencecall that is not joining (the kicked one): refused too
        stale = Carrier(await RtpSession.open("127.0.0.1"), 440)
        calls.append(stale)
        uri = f"sip:conference-{conference.id}@127.0.0.1:{a.sip.port}"
        assert b.ua is not None
        await b.ua.invite(request_uri=uri, to_uri=uri, from_uri="sip:pod-b@127.0.0.1", sdp=stale.offer.serialize(),
                          destination=("127.0.0.1", a.sip.port), headers={POD_LEG_HEADER: cc_again}, handler=stale)
        await asyncio.wait_for(stale.ended.wait(), 10)
        assert stale.status == 404 and not stale.answered.is_set()

        # the room ends (delete routed from B to A): A's caller is released and hangs up
        await b.pods.route("conference", conference.id, "conferences.delete", customer_id=seed.customer_id,
                           conference_id=conference.id)
        await asyncio.wait_for(on_a.ended.wait(), 10)
    finally:
        await sub.unsubscribe()
        for c in calls:
            c.rtp.close()


async def _hears(a: Carrier, a_hz: float, b: Carrier, b_hz: float) -> None:
    """Each of two callers hears the other's tone (after a quarter second), not its own."""
    a_hears, a_rms = dominant_hz((await a.next_audio(1.5))[4000:])
    b_hears, b_rms = dominant_hz((await b.next_audio(1.5))[4000:])
    assert a_rms > 300 and b_rms > 300, (a_rms, b_rms)
    assert abs(a_hears - b_hz) < 20 and abs(b_hears - a_hz) < 20, (a_hears, b_hears)


@pytest.mark.slow
@pytest.mark.sip_peer
async def test_media_pod_processes_share_a_room_through_a_pod_leg(cluster: Cluster, seen: Seen,
                                                                  trunk: UserAgent) -> None:
    """The same with real ``voipbin serve --role media`` processes (each its own media clock) and the
    room created through an ``api`` pod: a caller on each pod, both hear the other."""
    trunk_env = {"VOIPBIN_TRUNK_URI": f"sip:127.0.0.1:{trunk.stack.port}",
                 "VOIPBIN_TRUNK_ALLOWED_HOSTS": f"127.0.0.1:{trunk.stack.port}"}
    seed = await cluster.seed()
    api_pod, m1, m2 = await asyncio.gather(cluster.start("api"), cluster.start("media", env=trunk_env),
                                           cluster.start("media", env=trunk_env))
    token = await api_pod.login()
    calls: list[Carrier] = []
    async with httpx.AsyncClient(base_url=api_pod.base_url, params={"token": token}, timeout=30) as api:
        conference = await room_behind_number(api, seed.number, "across")
        try:
            on_1 = await call_number(trunk, m1.sip_port, seed.number, 440)
            on_2 = await call_number(trunk, m2.sip_port, seed.number, 1000)
            calls += [on_1, on_2]

            await seen.until(lambda: len(of_conference(seen, "conferencecall_joined", conference["id"])) == 2, 30)
            await _hears(on_1, 440, on_2, 1000)

            # the caller on the pod that does not mix the room hangs up: it leaves on the other pod
            remote = on_2 if await pod_of(cluster, "conferences", conference["id"]) == m1.pod_id else on_1
            await remote.session.bye()
            await seen.until(lambda: any(e.event_type == "conferencecall_leaved" for e in seen.events), 15)
        finally:
            for c in calls:
                c.rtp.close()
