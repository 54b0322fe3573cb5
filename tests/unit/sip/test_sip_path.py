"""Path (RFC 3327) at the registrar and as the route set of the INVITE to a registered phone.

The registrar stores a REGISTER's Path with the binding and echoes it to a UA that supports ``path``;
an INVITE given that Path as ``route`` goes to the first hop with the values as ``Route`` headers, its
CANCEL keeps them, and the dialog then follows the 2xx's Record-Route (RFC 3261 §8.1.2, §12.1.2).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from sip_fakes import FakeTransport
from test_sip_registrar import SRC, Env
from test_ua_raw_peer import ANSWER, T1, WAIT, Peer, call, reply

from tests_support.legs import LegRecorder
from voipbin.sip.path import path_source
from voipbin.sip.stack import SipStack, StackConfig
from voipbin.sip.ua import UserAgent

PROXY = ("192.0.2.1", 5060)
PATH = "<sip:192.0.2.1:5060;lr;received=sip:198.51.100.7:40123>"
PATH_ESCAPED = "<sip:192.0.2.1:5060;lr;received=sip:198.51.100.7%3A40123>"


@pytest.fixture
def env() -> Env:
    return Env()


@pytest.fixture
async def ua() -> AsyncIterator[UserAgent]:
    stack = SipStack(StackConfig(port=0, timers={"t1": T1}))
    await stack.start()
    agent = UserAgent(stack)
    yield agent
    agent.close()
    await stack.stop()


@pytest.fixture
def peer() -> Iterator[Peer]:
    p = Peer()
    yield p
    p.close()


async def test_register_with_path_is_stored_and_echoed_to_a_ua_that_supports_path(env: Env) -> None:
    response = await env.send(env.register(f"Path: {PATH}", "Supported: path, outbound"))
    assert response.status == 200
    assert response.headers.get_all("Path") == [PATH]
    assert "path" in response.headers.get_all("Supported")
    [binding] = await env.location.lookup("sip:100@c1.registrar.voipbin.test", env.now)
    assert binding.path == (PATH,) and binding.received == SRC


async def test_path_stored_but_not_echoed_without_supported_path(env: Env) -> None:
    response = await env.send(env.register(f"Path: {PATH}", "Path: <sip:203.0.113.9;lr>"))
    assert response.status == 200 and response.headers.get_all("Path") == []
    [binding] = await env.location.lookup("sip:100@c1.registrar.voipbin.test", env.now)
    assert binding.path == (PATH, "<sip:203.0.113.9;lr>")  # nearest proxy first, as received


async def test_register_without_path_has_an_empty_route_set_and_says_supported_path(env: Env) -> None:
    response = await env.send(env.register())
    assert response.status == 200 and response.headers.get_all("Supported") == ["path"]
    [binding] = await env.location.lookup("sip:100@c1.registrar.voipbin.test", env.now)
    assert binding.path == ()


async def test_path_without_lr_is_a_400(env: Env) -> None:
    response = await env.send(env.register("Path: <sip:192.0.2.1:5060>"), password=None)
    assert (response.status, response.reason) == (400, "Bad Path")


async def test_require_of_an_unknown_extension_is_a_420_naming_it(env: Env) -> None:
    response = await env.send(env.register("Require: path, gruu"), password=None)
    assert response.status == 420 and response.headers.get("Unsupported") == "gruu"
    ok = await env.send(env.register("Require: path", f"Path: {PATH}"))
    assert ok.status == 200 and ok.headers.get_all("Path") == [PATH]


def test_path_source_trusts_received_only_from_a_trusted_proxy_that_sent_it() -> None:
    assert path_source((PATH,), PROXY, {"192.0.2.1"}) == ("198.51.100.7", 40123)
    assert path_source((PATH_ESCAPED,), PROXY, {"192.0.2.1"}) == ("198.51.100.7", 40123)
    assert path_source((PATH,), PROXY, set()) == PROXY  # not trusted: the packet's source
    assert path_source((PATH,), ("203.0.113.5", 5060), {"192.0.2.1"}) == ("203.0.113.5", 5060)
    assert path_source(("<sip:192.0.2.1;lr>",), PROXY, {"192.0.2.1"}) == PROXY  # no received
    assert path_source(("<sip:192.0.2.1;lr;received=sip:evil.example>",), PROXY, {"192.0.2.1"}) == PROXY


async def test_digest_failures_behind_a_trusted_proxy_count_per_phone() -> None:
    """Two phones behind one edge proxy: one's wrong passwords block it, not the other."""
    env = Env()
    env.registrar.trusted_proxies = frozenset({SRC[0]})
    other = "<sip:192.0.2.10:5062;lr;received=sip:198.51.100.8:5060>"
    for _ in range(4):
        assert (await env.send(env.register(f"Path: {PATH}"), password="wrong")).status in (401, 403)
    blocked = await env.send(env.register(f"Path: {PATH}"), password="wrong")
    assert blocked.status == 403
    assert (await env.send(env.register(f"Path: {other}", call_id="cid-2"))).status == 200


async def test_invite_with_a_route_goes_to_the_first_hop_and_then_follows_record_route(
        ua: UserAgent, peer: Peer) -> None:
    """The INVITE to a contact registered through a proxy: Request-URI the contact, ``Route`` the Path,
    sent to the Path's address; the ACK and BYE carry the 2xx's Record-Route and go to that proxy."""
    rec = LegRecorder()
    route = f"<sip:127.0.0.1:{peer.port};lr;received=sip:10.0.0.5:5062>"
    session = await call(ua, peer, rec, request_uri="sip:100@10.0.0.5:5062", route=(route,))
    invite, _, addr = await peer.request("INVITE")
    assert str(invite.uri) == "sip:100@10.0.0.5:5062"
    assert invite.headers.get_all("Route") == [route]
    record_route = f"<sip:127.0.0.1:{peer.port};lr;r2=on>"
    peer.send(reply(invite, 200, to_tag="p1", sdp=ANSWER,
                    extra=[("Record-Route", record_route), ("Contact", "<sip:100@10.0.0.5:5062>")]), addr)
    ack, _, _ = await peer.request("ACK")
    assert str(ack.uri) == "sip:100@10.0.0.5:5062" and ack.headers.get_all("Route") == [record_route]
    await asyncio.wait_for(rec.answered.wait(), WAIT)
    task = asyncio.ensure_future(session.bye())
    bye, _, _ = await peer.request("BYE")
    assert bye.headers.get_all("Route") == [record_route]
    peer.send(reply(bye, 200), addr)
    await task
    assert rec.ended_with == [("local_bye", 200)]


async def test_cancel_of_a_routed_invite_keeps_its_route(ua: UserAgent, peer: Peer) -> None:
    rec = LegRecorder()
    route = f"<sip:127.0.0.1:{peer.port};lr>"
    session = await call(ua, peer, rec, request_uri="sip:100@10.0.0.5:5062", route=(route,))
    invite, _, addr = await peer.request("INVITE")
    peer.send(reply(invite, 180, to_tag="p1"), addr)
    await asyncio.wait_for(rec.ringing.wait(), WAIT)
    await session.cancel()
    cancel, _, _ = await peer.request("CANCEL")
    assert cancel.headers.get_all("Route") == [route]
    peer.send(reply(cancel, 200, to_tag="p1"), addr)
    peer.send(reply(invite, 487, to_tag="p1"), addr)
    await asyncio.wait_for(rec.ended.wait(), WAIT)
    assert rec.ended_with == [("rejected", 487)]


def test_the_edge_proxy_is_not_rate_limited_as_one_source(udp: FakeTransport) -> None:
    """Every phone behind Kamailio arrives from its address: a trusted source skips the per-source
    token bucket, any other source still meets it."""
    stack = SipStack(StackConfig(port=0, rate_per_source_s=1, rate_burst=1, trusted_sources=frozenset({"192.0.2.1"})))
    for _ in range(5):
        stack.receive(b"\r\n\r\n", PROXY, udp)  # keep-alives: counted only when refused by the bucket
        stack.receive(b"\r\n\r\n", ("198.51.100.9", 5060), udp)
    assert stack.stats["rate_limited"] == 4  # the other source: one token, four refused
