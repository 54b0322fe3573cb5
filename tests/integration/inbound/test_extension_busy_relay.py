"""An extension calling another extension that answers 486 Busy Here (sipp): the caller, authenticated by
digest after a 407, gets the same 486; a wrong password never gets through the challenge."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from inbound_support import free_udp_port
from test_trunk_sipp import finish, sipp
from tests_support.legs import RtpCaller
from voipbin.media.session import RtpSession
from voipbin.sip.location import Binding
from voipbin.sip.stack import SipStack, StackConfig
from voipbin.sip.ua import UserAgent

pytestmark = pytest.mark.sip_peer

SIP_SCENARIOS = Path(__file__).parents[1] / "sip" / "scenarios"


async def _extension(client: httpx.AsyncClient, token: str, name: str, ext: str) -> dict[str, Any]:
    r = await client.post("/v1.0/extensions", params={"token": token},
                          json={"name": name, "detail": f"{name} phone", "extension": ext, "password": f"{name}-secret-pw"})
    assert r.status_code == 200, r.text
    return r.json()


async def _dial(runtime: Any, caller: str, password: str, dialled: str) -> tuple[RtpCaller, UserAgent]:
    stack = SipStack(StackConfig(host="127.0.0.1", port=0))
    await stack.start()
    agent = UserAgent(stack)
    rtp = await RtpSession.open("127.0.0.1")
    call = RtpCaller(rtp)
    domain = f"{runtime.seed.customer_id}.registrar.voipbin.test"
    await agent.invite(request_uri=f"sip:{dialled}@{domain}", to_uri=f"sip:{dialled}@{domain}",
                       from_uri=f"sip:{caller}@{domain}", destination=("127.0.0.1", runtime.sip.port),
                       sdp=call.offer.serialize(), credentials=(caller, password), handler=call)
    return call, agent


async def test_callee_busy_is_relayed_to_the_caller(client: httpx.AsyncClient, admin_token: str, runtime: Any,
                                                   events: Any, tmp_path: Path) -> None:
    await _extension(client, admin_token, "carol", "3001")
    dave = await _extension(client, admin_token, "dave", "3002")
    port = free_udp_port()
    proc = await sipp(["-sf", str(SIP_SCENARIOS / "uas_busy.xml"), "-p", str(port)], tmp_path)
    aor = f"sip:3002@{runtime.seed.customer_id}.registrar.voipbin.test"
    await runtime.location.save(Binding(
        aor=aor, contact=f"sip:3002@127.0.0.1:{port}", expires_at=time.time() + 300, received=("127.0.0.1", port),
        transport="UDP", call_id="reg-dave", cseq=1, domain_id=runtime.seed.customer_id, user="3002",
        owner_id=dave["id"]))
    call, agent = await _dial(runtime, "3001", "carol-secret-pw", "3002")
    try:
        await asyncio.wait_for(call.ended.wait(), 15)
        assert call.ended_with == [("rejected", 486)]
        master = await events.next("call_hangup", where=lambda e: e.data["direction"] == "incoming")
        assert master.data["hangup_reason"] == "busy"
        rc, out = await finish(proc)
        assert rc == 0, out[-3000:]
    finally:
        call.rtp.close()
        agent.close()
        await agent.stack.stop()


async def test_wrong_password_is_challenged_again(client: httpx.AsyncClient, admin_token: str,
                                                 runtime: Any) -> None:
    await _extension(client, admin_token, "carol", "3001")
    await _extension(client, admin_token, "dave", "3002")
    call, agent = await _dial(runtime, "3001", "not-the-password", "3002")
    try:
        await asyncio.wait_for(call.ended.wait(), 15)
        assert call.ended_with == [("rejected", 407)]
        assert (await client.get("/v1.0/calls", params={"token": admin_token})).json()["result"] == []
    finally:
        call.rtp.close()
        agent.close()
        await agent.stack.stop()
