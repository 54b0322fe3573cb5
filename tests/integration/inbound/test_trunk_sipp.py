"""sipp as the carrier: an inbound call whose DTMF arrives by SIP INFO and which the carrier puts on hold
with a re-INVITE (we must answer recvonly and stop sending), and an outbound tel call through a trunk
that challenges with 407 (digest answered, caller ID = the owned number)."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from inbound_support import free_udp_port, number_with_flow


pytestmark = pytest.mark.sip_peer

SCENARIOS = Path(__file__).parent / "scenarios"


async def sipp(args: list[str], cwd: Path) -> asyncio.subprocess.Process:
    assert shutil.which("sipp"), "sipp is required (apt-get install sip-tester)"
    return await asyncio.create_subprocess_exec(
        "sipp", *args, "-i", "127.0.0.1", "-t", "u1", "-m", "1", "-nostdin", "-timeout", "25",
        "-mp", str(free_udp_port()), cwd=str(cwd), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)


async def finish(proc: asyncio.subprocess.Process) -> tuple[int, str]:
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode or 0, out.decode(errors="replace")


async def test_info_dtmf_branches_and_remote_hold_is_answered_recvonly(
        client: httpx.AsyncClient, admin_token: str, runtime: Any, events: Any, trunk_port: int,
        tmp_path: Path) -> None:
    one, other = str(uuid.uuid4()), str(uuid.uuid4())
    await number_with_flow(client, admin_token, runtime, [
        {"type": "answer"},
        {"type": "digits_receive", "option": {"duration": 10000, "length": 1}},
        {"type": "branch", "option": {"target_ids": {"1": one}, "default_target_id": other}},
        {"id": other, "type": "hangup", "option": {"reason": "busy"}},
        {"id": one, "type": "sleep", "option": {"duration": 1500}},
        {"type": "hangup"},
    ])
    proc = await sipp(["-sf", str(SCENARIOS / "trunk_info_hold.xml"), "-s", runtime.seed.number,
                       "-p", str(trunk_port), f"127.0.0.1:{runtime.sip.port}"], tmp_path)
    created = (await events.next("call_created")).data
    assert created["source"]["target"] == "+15557770000" and created["direction"] == "incoming"
    digit = await events.next("dtmf_received", created["id"])
    assert digit.data["digit"] == "1" and digit.data["duration"] == 160
    hangup = await events.next("call_hangup", created["id"], timeout=25)
    assert (hangup.data["hangup_by"], hangup.data["hangup_reason"]) == ("local", "normal")
    rc, out = await finish(proc)
    assert rc == 0, out[-3000:]  # sipp got 200s for INFO and the re-INVITE (recvonly) and our BYE
    af = (await client.get(f"/v1.0/activeflows/{created['activeflow_id']}", params={"token": admin_token})).json()
    assert [a["type"] for a in af["executed_actions"]] == [
        "answer", "digits_receive", "branch", "sleep", "hangup"]


async def test_outbound_tel_call_answers_a_407_challenge(client: httpx.AsyncClient, admin_token: str,
                                                         runtime: Any, events: Any, trunk_port: int,
                                                         tmp_path: Path) -> None:
    proc = await sipp(["-sf", str(SCENARIOS / "trunk_uas_407.xml"), "-p", str(trunk_port)], tmp_path)
    r = await client.post("/v1.0/calls", params={"token": admin_token}, json={
        "source": {"type": "tel", "target": runtime.seed.number},
        "destinations": [{"type": "tel", "target": "+15557654321"}],
        "actions": [{"type": "sleep", "option": {"duration": 500}}]})
    assert r.status_code == 200, r.text
    call_id = r.json()["calls"][0]["id"]
    await events.next("call_progressing", call_id)
    hangup = await events.next("call_hangup", call_id)
    assert (hangup.data["hangup_by"], hangup.data["hangup_reason"]) == ("local", "normal")
    rc, out = await finish(proc)
    assert rc == 0, out[-3000:]  # the retry carried Proxy-Authorization and From = the owned number
