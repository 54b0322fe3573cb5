"""Conferences across media pods, for the cluster tests: the carrier's tone calls, a room reachable
through the seed number, and where things live (which pod mixes a room, which holds a call)."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import numpy as np

from cluster_support import Cluster, Seen
from tests_support.legs import RtpCaller
from voipbin.media.players import BufferPlayer
from voipbin.media.session import RtpSession
from voipbin.runtime import Runtime
from voipbin.sip.ua import UserAgent

RATE_HZ = 8000


class Carrier(RtpCaller):
    """One call the carrier places: it says a tone of ``hz`` and keeps what it hears (8 kHz PCM16)."""

    def __init__(self, rtp: RtpSession, hz: float) -> None:
        super().__init__(rtp)
        t = np.arange(RATE_HZ) / RATE_HZ
        rtp.outbound.add(BufferPlayer((np.sin(2 * np.pi * hz * t) * 8000).astype(np.int16), RATE_HZ, loop=True))


async def call_number(trunk: UserAgent, pod: Runtime | int, number: str, hz: float,
                      headers: dict[str, str] | None = None) -> Carrier:
    """The carrier calls ``number`` at ``pod`` (a runtime, or a SIP port on 127.0.0.1) saying a tone of ``hz``."""
    call = Carrier(await RtpSession.open("127.0.0.1"), hz)
    uri = f"sip:{number}@127.0.0.1:{pod if isinstance(pod, int) else pod.sip.port}"
    call.session = await trunk.invite(request_uri=uri, to_uri=uri, from_uri="sip:+15551230000@127.0.0.1",
                                      sdp=call.offer.serialize(), headers=headers, handler=call)
    return call


async def room_behind_number(api: httpx.AsyncClient, number: str, name: str) -> dict[str, Any]:
    """A ``conference`` room, and ``number``'s flow set to ``answer`` + ``conference_join`` it: every call
    to the number joins the room. Returns the conference."""
    r = await api.post("/v1.0/conferences", json={"type": "conference", "name": name, "detail": ""})
    assert r.status_code == 200, r.text
    conference = r.json()
    r = await api.post("/v1.0/flows", json={"name": "room", "detail": "", "actions": [
        {"type": "answer"}, {"type": "conference_join", "option": {"conference_id": conference["id"]}}]})
    assert r.status_code == 200, r.text
    row = next(n for n in (await api.get("/v1.0/numbers")).json()["result"] if n["number"] == number)
    r = await api.put(f"/v1.0/numbers/{row['id']}", json={"call_flow_id": r.json()["id"]})
    assert r.status_code == 200, r.text
    return conference


def of_conference(seen: Seen, event_type: str, conference_id: str) -> list[Any]:
    """The ``event_type`` events seen so far whose data names ``conference_id``, in order."""
    return [e for e in seen.events if e.event_type == event_type and e.data.get("conference_id") == conference_id]


async def pod_of(cluster: Cluster, table: str, row_id: str) -> str:
    """The ``pod_id`` of a row of ``table`` (``conferences``: the pod mixing the room; ``calls``: the
    pod holding the call)."""
    assert table in ("conferences", "calls")
    conn = await asyncpg.connect(cluster.db_url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        return str(await conn.fetchval(f"SELECT pod_id FROM {table} WHERE id = $1", row_id))  # noqa: S608
    finally:
        await conn.close()
