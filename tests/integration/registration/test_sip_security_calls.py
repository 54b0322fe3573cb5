"""Issue 13 finding 8 and issue 12, against a runtime configured as ``serve`` is (``sip_allow_private`` off):

* ``POST /calls`` to ``sip:x@127.0.0.1:<port>`` never sends an INVITE there (a 400 naming the destination,
  or a call that fails at once), while a listener on that port waits;
* a hostname that does not resolve (``.invalid``) ends the call ``failed`` within seconds, not ``dialing``;
* the registrar accepts ``<customer-id>.registrar.voipbin.net`` as well as the configured domain.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import httpx
import pytest

from voipbin.events.bus import event_queue
from voipbin.sip.stack import SipStack, StackConfig

pytestmark = pytest.mark.sip_peer


async def _post_call(client: httpx.AsyncClient, token: str, runtime: Any, target: str) -> httpx.Response:
    return await client.post("/v1.0/calls", params={"token": token}, json={
        "source": {"type": "tel", "target": runtime.seed.number},
        "destinations": [{"type": "sip", "target": target}],
        "actions": [{"type": "sleep", "option": {"duration": 1000}}]})


async def _hangup_of(queue: asyncio.Queue[Any], call_id: str, timeout: float) -> Any:
    async def find() -> Any:
        while True:
            event = await queue.get()
            if event.resource_id == call_id and event.event_type == "call_hangup":
                return event
    return await asyncio.wait_for(find(), timeout)


async def test_sip_destination_on_loopback_is_refused(client: httpx.AsyncClient, admin_token: str,
                                                      runtime: Any) -> None:
    assert runtime.settings.sip_allow_private is False
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.setblocking(False)
    port = listener.getsockname()[1]
    queue, sub = await event_queue(runtime.bus, f"customer_id:{runtime.seed.customer_id}:call")
    r = await _post_call(client, admin_token, runtime, f"sip:x@127.0.0.1:{port}")
    if r.status_code == 400:
        assert r.json()["error"]["message"].startswith("destinations[0].target")
    else:
        assert r.status_code == 200, r.text
        hangup = await _hangup_of(queue, r.json()["calls"][0]["id"], 5)
        assert hangup.data["hangup_reason"] == "failed"
    with pytest.raises(TimeoutError):  # nothing was sent to the loopback address
        await asyncio.wait_for(asyncio.get_running_loop().sock_recv(listener, 65535), 0.5)
    listener.close()
    await sub.unsubscribe()


async def test_unresolvable_hostname_fails_the_call_within_seconds(client: httpx.AsyncClient, admin_token: str,
                                                                   runtime: Any) -> None:
    queue, sub = await event_queue(runtime.bus, f"customer_id:{runtime.seed.customer_id}:call")
    started = time.monotonic()
    r = await _post_call(client, admin_token, runtime, "sip:bob@phone.invalid")
    assert r.status_code == 200, r.text
    call_id = r.json()["calls"][0]["id"]
    hangup = await _hangup_of(queue, call_id, 10)
    assert (hangup.data["hangup_by"], hangup.data["hangup_reason"]) == ("local", "failed")
    assert time.monotonic() - started < 10
    got = (await client.get(f"/v1.0/calls/{call_id}", params={"token": admin_token})).json()
    assert got["status"] == "hangup"
    await sub.unsubscribe()


async def test_register_to_each_registrar_domain(client: httpx.AsyncClient, admin_token: str, runtime: Any) -> None:
    r = await client.post("/v1.0/extensions", params={"token": admin_token}, json={
        "name": "softphone", "detail": "d", "extension": "quickstart1", "password": "your-secure-password-here"})
    assert r.status_code == 200, r.text
    ext_id = r.json()["id"]
    phone = SipStack(StackConfig(host="127.0.0.1", port=0, user_agent="linphone"))
    await phone.start()
    try:
        for i, domain in enumerate(("voipbin.test", "voipbin.net")):
            host = f"{runtime.seed.customer_id}.registrar.{domain}"
            request = phone.create_request("REGISTER", f"sip:{host}", from_=f"<sip:quickstart1@{host}>",
                                           to=f"<sip:quickstart1@{host}>",
                                           contact=f"<sip:quickstart1@127.0.0.1:{phone.port};line={i}>")
            response = await phone.send_request_with_auth(request, username="quickstart1",
                                                          password="your-secure-password-here",
                                                          dest=("127.0.0.1", runtime.sip.port))
            assert response.status == 200, (domain, response.status, response.reason)
        wrong = phone.create_request("REGISTER", "sip:x.registrar.example.org", from_="<sip:q@x.registrar.example.org>",
                                     to="<sip:q@x.registrar.example.org>", contact=f"<sip:q@127.0.0.1:{phone.port}>")
        assert (await phone.send_request(wrong, dest=("127.0.0.1", runtime.sip.port))).status == 404
    finally:
        await phone.stop()
    got = (await client.get(f"/v1.0/extensions/{ext_id}", params={"token": admin_token})).json()
    assert got["registered"] is True and len(got["contacts"]) == 2
