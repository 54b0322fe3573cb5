"""Hold from our side against a real baresip: POST /calls/{id}/hold re-INVITEs it with ``a=sendonly``
(RFC 3264 §8.4), baresip answers ``recvonly`` and stops sending its audio; DELETE re-INVITEs with
``sendrecv`` and its audio comes back. Both re-INVITEs keep our SDP session id (version + 1 each)."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from voipbin.demo.baresip import BaresipPhone
from voipbin.events.bus import event_queue
from voipbin.media.sdp import Direction, SessionDescription

pytestmark = [pytest.mark.sip_peer, pytest.mark.slow]

HOLD_CHECK_S = 0.6  # a held phone must send nothing over this long (it sends 50 packets/s otherwise)


def _silence(path: Path, seconds: int = 60) -> Path:
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(path), "trim", "0", str(seconds)],
                   check=True)
    return path


async def _packets_grow(media: Any, by: int, timeout: float = 5) -> None:
    async def grow() -> None:
        start = media.stats.packets_received
        while media.stats.packets_received < start + by:
            await asyncio.sleep(0.02)  # RTP arrives over time; there is no event per packet
    await asyncio.wait_for(grow(), timeout)


@pytest.fixture
async def registered_phone(client: httpx.AsyncClient, admin_token: str, runtime: Any, tmp_path: Path):  # type: ignore[no-untyped-def]
    r = await client.post("/v1.0/extensions", params={"token": admin_token}, json={
        "name": "hold-phone", "detail": "hold test", "extension": "holdphone1", "password": "hold-secret-1234"})
    ext = r.json()
    phone = BaresipPhone(tmp_path, user="holdphone1", domain=f"{ext['customer_id']}.registrar.voipbin.test",
                         password="hold-secret-1234", proxy=("127.0.0.1", runtime.sip.port),
                         audio_file=_silence(tmp_path / "silence.wav"))
    await phone.start()
    await phone.wait_event("REGISTER_OK")
    yield phone
    await phone.stop()


async def test_hold_and_unhold_reinvite_baresip(client: httpx.AsyncClient, admin_token: str, runtime: Any,
                                                registered_phone: BaresipPhone) -> None:
    phone = registered_phone
    params = {"token": admin_token}
    queue, sub = await event_queue(runtime.bus, f"customer_id:{runtime.seed.customer_id}:call")
    r = await client.post("/v1.0/calls", params=params, json={
        "source": {"type": "tel", "target": runtime.seed.number},
        "destinations": [{"type": "extension", "target_name": "hold-phone"}],
        "actions": [{"type": "sleep", "option": {"duration": 60000}}]})
    assert r.status_code == 200, r.text
    call_id = r.json()["calls"][0]["id"]
    await phone.wait_event("CALL_ESTABLISHED")
    while (await asyncio.wait_for(queue.get(), 10)).event_type != "call_progressing":
        pass
    leg = runtime.calls.live(call_id).leg
    media = leg.media
    first_sdp = SessionDescription.parse(leg.session.local_sdp)
    await _packets_grow(media, 10)  # the phone talks to us

    r = await client.post(f"/v1.0/calls/{call_id}/hold", params=params)
    assert r.status_code == 200, r.text
    held_sdp = SessionDescription.parse(leg.session.local_sdp)
    assert held_sdp.media[0].direction() == Direction.SENDONLY
    assert held_sdp.origin.session_id == first_sdp.origin.session_id
    assert int(held_sdp.origin.session_version) > int(first_sdp.origin.session_version)
    answer = SessionDescription.parse(leg.session.remote_sdp)
    assert answer.media[0].direction(answer.direction()) in (Direction.RECVONLY, Direction.INACTIVE)
    assert media.direction in (Direction.SENDONLY, Direction.INACTIVE)
    await asyncio.sleep(0.2)  # packets the phone sent before it applied the hold are in flight
    before = media.stats.packets_received
    await asyncio.sleep(HOLD_CHECK_S)  # proving silence takes time: nothing may arrive
    assert media.stats.packets_received - before <= 2, "baresip kept sending while held"

    r = await client.delete(f"/v1.0/calls/{call_id}/hold", params=params)
    assert r.status_code == 200, r.text
    resumed_sdp = SessionDescription.parse(leg.session.local_sdp)
    assert resumed_sdp.media[0].direction() == Direction.SENDRECV
    assert resumed_sdp.origin.session_id == first_sdp.origin.session_id
    assert int(resumed_sdp.origin.session_version) > int(held_sdp.origin.session_version)
    assert media.direction == Direction.SENDRECV
    await _packets_grow(media, 10)  # its audio is back

    r = await client.post(f"/v1.0/calls/{call_id}/hangup", params=params)
    await phone.wait_event("CALL_CLOSED")
    await sub.unsubscribe()
