"""Scale-out with real processes (issue 19): one ``api`` pod, two ``media`` pods and one ``worker``
(``voipbin serve --role ...``) on PostgreSQL and NATS. Each media pod reaches the sandbox's virtual
PSTN for tel destinations (a phone that records what it hears in the pod's directory).

Shown: calls placed through the api pod land on both media pods; a speaking created and spoken
through the api pod is heard on the phone of a call held by a media pod; conference commands reach
the conference's pod; after a SIGKILL of a media pod, a command for one of its calls is a 503
naming the pod (no hang), the worker ends its calls within 10 s (``call_hangup`` events, hung up
``local``/``failed``), the other pod's calls go on, new calls land on the survivor; the restarted
pod takes calls again.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import pytest_asyncio

from cluster_support import Cluster, Pod, Seen
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from tests_support.frame_log import VOICED_RMS, rms
from tests_support.llm_servers import serve

pytestmark = [pytest.mark.postgres, pytest.mark.nats, pytest.mark.sip_peer]

NATS_URL = os.environ.get("VOIPBIN_TEST_NATS_URL", "nats://127.0.0.1:4222")
SOURCE = {"type": "tel", "target": "+15550100000"}
SAY = "Hello from the media pod. This sentence was asked for through the api pod."
FRAME_BYTES = 320  # 20 ms of 8 kHz PCM16


class Hooks:
    """A webhook endpoint: the event types and resource ids delivered to it."""

    def __init__(self) -> None:
        self.delivered: list[tuple[str, str]] = []
        self.arrived = asyncio.Event()
        self.app = Starlette(routes=[Route("/hooks", self._receive, methods=["POST"])])

    async def _receive(self, request: Request) -> PlainTextResponse:
        body = await request.json()
        self.delivered.append((body["type"], body["data"]["id"]))
        self.arrived.set()
        return PlainTextResponse("ok")

    async def wait_for(self, event_type: str, resource_id: str, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while (event_type, resource_id) not in self.delivered:
                self.arrived.clear()
                await self.arrived.wait()


@pytest_asyncio.fixture
async def hooks() -> AsyncIterator[tuple[Hooks, str]]:
    receiver = Hooks()
    async with serve(receiver.app) as url:
        yield receiver, f"{url}/hooks"


async def _pod_of(cluster: Cluster, resource_id: str, table: str = "calls") -> str:
    """The ``pod_id`` of a call (or another row of ``table``)."""
    conn = await asyncpg.connect(cluster.db_url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        return str(await conn.fetchval(f"SELECT pod_id FROM {table} WHERE id = $1", resource_id))
    finally:
        await conn.close()


async def _call(api: httpx.AsyncClient, seen: Seen, number: str) -> str:
    """An answered call from the api pod to the virtual phone ``number`` (no flow: it stays up)."""
    r = await api.post("/v1.0/calls", json={"source": SOURCE, "destinations": [{"type": "tel", "target": number}],
                                            "actions": []})
    assert r.status_code == 200, r.text
    call_id = str(r.json()["calls"][0]["id"])
    await seen.until(lambda: bool(seen.of("call_progressing", call_id)), 30)
    return call_id


def _voiced_frames(recording: Path) -> int:
    """Frames above VOICED_RMS in what a virtual phone heard so far (the WAV grows while the call lasts)."""
    data = recording.read_bytes()[44:]  # after the RIFF header of wave's writer
    return sum(rms(data[i:i + FRAME_BYTES]) > VOICED_RMS for i in range(0, len(data) - FRAME_BYTES + 1, FRAME_BYTES))


def _recording(pod: Pod, number: str) -> Path:
    (path,) = pod.recordings.glob(f"{number}-*.wav")
    return path


async def _heard(pod: Pod, number: str, frames: int, timeout: float) -> int:
    """Wait until the phone of ``number`` on ``pod`` heard ``frames`` voiced frames; returns how many it heard."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        heard = _voiced_frames(_recording(pod, number))
        if heard >= frames or loop.time() > deadline:
            return heard
        await asyncio.sleep(0.2)  # the file is written by another process: no event to await


async def test_api_media_worker_pods(cluster: Cluster, seen: Seen, hooks: tuple[Hooks, str]) -> None:
    seed = await cluster.seed()
    api_pod, m1, m2, worker = await asyncio.gather(
        cluster.start("api"), cluster.start("media"), cluster.start("media"), cluster.start("worker"))
    rows = {p.pod_id: await cluster.pod_row(p.pod_id) for p in (api_pod, m1, m2, worker)}
    assert {pid: row["role"] for pid, row in rows.items() if row} == {
        api_pod.pod_id: "api", m1.pod_id: "media", m2.pod_id: "media", worker.pod_id: "worker"}
    assert (rows[m1.pod_id]["sip_host"], rows[m1.pod_id]["sip_port"]) == ("127.0.0.1", m1.sip_port)
    assert rows[api_pod.pod_id]["sip_port"] == 0
    token = await api_pod.login()
    receiver, hook_url = hooks
    async with httpx.AsyncClient(base_url=api_pod.base_url, params={"token": token}, timeout=30) as api:
        r = await api.put("/v1.0/customer", json={"webhook_method": "POST", "webhook_uri": hook_url})
        assert r.status_code == 200, r.text
        # calls placed through the api pod are spread over both media pods
        numbers = [f"+1555987000{i}" for i in range(4)]
        calls = [await _call(api, seen, n) for n in numbers]
        pods = [await _pod_of(cluster, c) for c in calls]
        assert set(pods) == {m1.pod_id, m2.pod_id}, pods
        for c in calls:  # the worker delivers the webhooks of events written by the media pods
            await receiver.wait_for("call_progressing", c, 15)
        by_pod = {m1.pod_id: m1, m2.pod_id: m2}

        # a speaking through the api pod, on a call held by a media pod: its phone hears it
        spoken, quiet = 0, 1  # calls[0] gets the speaking, calls[1] is the silent reference
        r = await api.post("/v1.0/speakings", json={"reference_type": "call", "reference_id": calls[spoken],
                                                    "language": "en-US", "direction": "out"})
        assert r.status_code == 201, r.text
        speaking = r.json()
        assert speaking["pod_id"] == pods[spoken]
        await seen.until(lambda: bool(seen.of("speaking_started", speaking["id"])), 60)
        r = await api.post(f"/v1.0/speakings/{speaking['id']}/say", json={"text": SAY})
        assert r.status_code == 200, r.text
        heard = await _heard(by_pod[pods[spoken]], numbers[spoken], frames=50, timeout=60)
        assert heard >= 50, f"the phone heard {heard} voiced frames of the /say"
        assert _voiced_frames(_recording(by_pod[pods[quiet]], numbers[quiet])) < 5
        # errors raised on the holding pod keep their status through the api pod
        r = await api.post(f"/v1.0/speakings/{speaking['id']}/say", json={"text": ""})
        assert r.status_code == 400, r.text
        r = await api.post(f"/v1.0/calls/{calls[quiet]}/mute", json={"direction": "sideways"})
        assert r.status_code == 400 and r.json()["error"]["details"] == [{"field": "direction"}], r.text
        r = await api.post(f"/v1.0/calls/{calls[quiet]}/mute", json={"direction": "in"})
        assert r.status_code == 200 and r.json()["mute_direction"] == "in", r.text
        r = await api.post(f"/v1.0/speakings/{speaking['id']}/stop")
        assert r.status_code == 200 and r.json()["status"] == "stopped", r.text

        # a conference lives on a media pod; its commands are routed there
        r = await api.post("/v1.0/conferences", json={"type": "conference", "name": "cluster room"})
        assert r.status_code == 200, r.text
        conference = r.json()
        r = await api.put(f"/v1.0/conferences/{conference['id']}", json={"name": "renamed", "timeout": 600})
        assert r.status_code == 200 and r.json()["name"] == "renamed", r.text
        room_pod = await _pod_of(cluster, conference["id"], "conferences")
        assert room_pod in (m1.pod_id, m2.pod_id)
        for n in range(2):  # a call joining it is placed on its pod, whichever pod is less loaded
            r = await api.post("/v1.0/calls", json={
                "source": SOURCE, "destinations": [{"type": "tel", "target": f"+155598701{n}0"}],
                "actions": [{"type": "conference_join", "option": {"conference_id": conference["id"]}}]})
            assert r.status_code == 200, r.text
            joiner = r.json()["calls"][0]["id"]
            assert await _pod_of(cluster, joiner) == room_pod
            await seen.until(lambda joiner=joiner: any(  # type: ignore[misc]
                e.data.get("reference_id") == joiner for e in seen.events if e.event_type == "conferencecall_joined"), 30)
        r = await api.delete(f"/v1.0/conferences/{conference['id']}")
        assert r.status_code == 200, r.text
        await seen.until(lambda: any(e.data.get("status") == "terminated"
                                     for e in seen.of("conference_updated", conference["id"])
                                     + seen.of("conference_deleted", conference["id"])), 15)

        # SIGKILL one media pod
        victim, survivor = (m2, m1) if pods[0] == m1.pod_id else (m1, m2)
        lost = [c for c, p in zip(calls, pods, strict=True) if p == victim.pod_id]
        kept = [c for c, p in zip(calls, pods, strict=True) if p == survivor.pod_id]
        loop = asyncio.get_running_loop()
        victim.kill()
        killed_at = loop.time()
        r = await api.post(f"/v1.0/calls/{lost[0]}/hangup")
        assert r.status_code == 503, r.text
        assert r.json()["message"] == f"pod {victim.pod_id} that holds call {lost[0]} is unavailable"
        assert loop.time() - killed_at < 6  # the deadline at most, never a hang
        # new calls avoid it at once
        fresh = await _call(api, seen, "+15559870010")
        assert await _pod_of(cluster, fresh) == survivor.pod_id

        # the worker ends its calls within 10 s, with events
        await seen.until(lambda: all(seen.of("call_hangup", c) for c in lost), 15)
        ended_after = loop.time() - killed_at
        assert ended_after <= 10.5, f"the dead pod's calls ended {ended_after:.1f}s after the kill"
        for c in lost:
            data = seen.of("call_hangup", c)[0].data
            assert (data["hangup_by"], data["hangup_reason"]) == ("local", "failed")
            await receiver.wait_for("call_hangup", c, 15)
        assert await cluster.pod_row(victim.pod_id) is None  # claimed by the worker
        for c in kept:  # the survivor's calls go on
            assert not seen.of("call_hangup", c)
            assert (await api.get(f"/v1.0/calls/{c}")).json()["status"] == "progressing"
        r = await api.post(f"/v1.0/calls/{lost[0]}/hangup")  # now ended: answered from the store
        assert r.status_code == 200 and r.json()["status"] == "hangup", r.text

        # restarted, the pod takes calls again (it is the least loaded)
        await cluster.restart(victim)
        back = await _call(api, seen, "+15559870011")
        assert await _pod_of(cluster, back) == victim.pod_id
        r = await api.post(f"/v1.0/calls/{back}/hangup")
        assert r.status_code == 200, r.text
        await seen.until(lambda: bool(seen.of("call_hangup", back)), 15)
    assert seed.customer_id
