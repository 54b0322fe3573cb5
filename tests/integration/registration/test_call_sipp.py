"""Call hangup causes against a real SIP UAS (sipp): busy, decline, no answer, cancel.

POST /calls with a ``sip`` destination at a sipp scenario; the call's ``hangup_by``/``hangup_reason``
must follow the final response (or our CANCEL), and sipp must see the full transaction (exit 0).
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests_support.net import free_port
from voipbin.config import Settings
from voipbin.events.bus import event_queue

pytestmark = pytest.mark.sip_peer


@pytest.fixture
def settings(sqlite_url: str) -> Settings:
    """sipp listens on 127.0.0.1: allow sip: destinations on loopback (``VOIPBIN_SIP_ALLOW_PRIVATE``)."""
    return Settings(database_url=sqlite_url, webhook_allow_private=True, sip_allow_private=True,  # type: ignore[call-arg]
                    sip_port=0, _env_file=None)

FINAL = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="uas_final">
  <recv request="INVITE"/>
  <send><![CDATA[

      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

  ]]></send>
  <send><![CDATA[

      SIP/2.0 {code} {reason}
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

  ]]></send>
  <recv request="ACK"/>
</scenario>
"""

RING_UNTIL_CANCEL = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="uas_ring_until_cancel">
  <recv request="INVITE"/>
  <send><![CDATA[

      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

  ]]></send>
  <recv request="CANCEL"/>
  <send><![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

  ]]></send>
  <send><![CDATA[

      SIP/2.0 487 Request Terminated
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      CSeq: [cseq] INVITE
      Content-Length: 0

  ]]></send>
  <recv request="ACK"/>
</scenario>
"""


async def _sipp(tmp_path: Path, scenario: str) -> tuple[asyncio.subprocess.Process, int]:
    assert shutil.which("sipp"), "sipp is required (Debian package sip-tester)"
    path = tmp_path / "scenario.xml"
    path.write_text(scenario)
    port = free_port(kind=2)  # SOCK_DGRAM
    proc = await asyncio.create_subprocess_exec(
        "sipp", "-sf", str(path), "-i", "127.0.0.1", "-p", str(port), "-t", "u1", "-m", "1", "-nostdin",
        "-timeout", "20", cwd=str(tmp_path), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    return proc, port


async def _finish(proc: asyncio.subprocess.Process) -> tuple[int, str]:
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 25)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode or 0, out.decode(errors="replace")


async def _call(client: httpx.AsyncClient, token: str, runtime: Any, port: int) -> str:
    r = await client.post("/v1.0/calls", params={"token": token}, json={
        "source": {"type": "tel", "target": runtime.seed.number},
        "destinations": [{"type": "sip", "target": f"sip:service@127.0.0.1:{port}"}],
        "actions": [{"type": "sleep", "option": {"duration": 1000}}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["groupcalls"] == []
    return str(body["calls"][0]["id"])


async def _hangup_event(queue: asyncio.Queue[Any], call_id: str) -> Any:
    async def find() -> Any:
        while True:
            event = await queue.get()
            if event.resource_id == call_id and event.event_type == "call_hangup":
                return event
    return await asyncio.wait_for(find(), 20)


@pytest.mark.parametrize(("code", "reason", "expected"), [
    (486, "Busy Here", ("remote", "busy")),
    (603, "Decline", ("remote", "noanswer")),
    (480, "Temporarily Unavailable", ("remote", "noanswer")),
    (503, "Service Unavailable", ("remote", "failed")),
])
async def test_final_response_sets_hangup_reason(client: httpx.AsyncClient, admin_token: str, runtime: Any,
                                                 tmp_path: Path, code: int, reason: str,
                                                 expected: tuple[str, str]) -> None:
    proc, port = await _sipp(tmp_path, FINAL.format(code=code, reason=reason))
    queue, sub = await event_queue(runtime.bus, f"customer_id:{runtime.seed.customer_id}:call")
    call_id = await _call(client, admin_token, runtime, port)
    hangup = await _hangup_event(queue, call_id)
    assert (hangup.data["hangup_by"], hangup.data["hangup_reason"]) == expected
    assert hangup.data["tm_ringing"] is not None and hangup.data["tm_progressing"] is None
    rc, out = await _finish(proc)
    assert rc == 0, out[-2000:]  # sipp received our ACK
    await sub.unsubscribe()


async def test_ring_timeout_cancels_with_dialout(client: httpx.AsyncClient, admin_token: str, runtime: Any,
                                                 tmp_path: Path) -> None:
    runtime.calls.settings.ring_timeout_seconds = 1.0
    proc, port = await _sipp(tmp_path, RING_UNTIL_CANCEL)
    queue, sub = await event_queue(runtime.bus, f"customer_id:{runtime.seed.customer_id}:call")
    call_id = await _call(client, admin_token, runtime, port)
    hangup = await _hangup_event(queue, call_id)
    assert (hangup.data["hangup_by"], hangup.data["hangup_reason"]) == ("local", "dialout")
    rc, out = await _finish(proc)
    assert rc == 0, out[-2000:]  # sipp saw our CANCEL and ACKed 487
    await sub.unsubscribe()


async def test_api_hangup_while_ringing_cancels(client: httpx.AsyncClient, admin_token: str, runtime: Any,
                                                tmp_path: Path) -> None:
    proc, port = await _sipp(tmp_path, RING_UNTIL_CANCEL)
    queue, sub = await event_queue(runtime.bus, f"customer_id:{runtime.seed.customer_id}:call")
    call_id = await _call(client, admin_token, runtime, port)

    async def ringing() -> None:
        while True:
            event = await queue.get()
            if event.resource_id == call_id and event.event_type == "call_ringing":
                return
    await asyncio.wait_for(ringing(), 10)
    r = await client.post(f"/v1.0/calls/{call_id}/hangup", params={"token": admin_token})
    assert r.status_code == 200 and r.json()["status"] in ("canceling", "hangup")
    hangup = await _hangup_event(queue, call_id)
    assert (hangup.data["hangup_by"], hangup.data["hangup_reason"]) == ("local", "cancel")
    rc, out = await _finish(proc)
    assert rc == 0, out[-2000:]
    await sub.unsubscribe()
