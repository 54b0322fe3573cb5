"""Our UAC against a scripted peer on a plain UDP socket: the wire details a friendly peer never
exercises. Queued CANCEL (§9.1), digest retry (§22.2), the ACK for a 2xx re-sent byte for byte
(§13.2.2.4), a forked 2xx ACKed and BYEd, a 2xx crossing our CANCEL, Record-Route (§12.1.2),
``destination`` overriding the Request-URI, early media (183), and Timer B.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from sip_fakes import FakeClock

from tests_support.legs import LegRecorder
from voipbin.sip.digest import Credentials, format_challenge
from voipbin.sip.invite_server import IncomingInvite
from voipbin.sip.message import Request, Response, make_response
from voipbin.sip.parser import parse_message
from voipbin.sip.stack import SipStack, StackConfig
from voipbin.sip.transport import Addr
from voipbin.sip.ua import UserAgent
from voipbin.sip.uri import parse_uri

T1 = 0.02
OFFER = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
         b"m=audio 40000 RTP/AVP 0 8 101\r\n")
ANSWER = OFFER.replace(b"40000", b"40002")
WAIT = 5.0


class Peer:
    """A hand-driven SIP peer on one UDP socket."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]

    async def recv(self, timeout: float = WAIT) -> tuple[Request | Response, bytes, Addr]:
        loop = asyncio.get_running_loop()
        data, addr = await asyncio.wait_for(loop.sock_recvfrom(self.sock, 65535), timeout)
        return parse_message(data), data, addr

    async def request(self, method: str, *,
                      skip: tuple[str, ...] = ("INVITE",)) -> tuple[Request, bytes, Addr]:
        """The next request of ``method``, skipping retransmissions of the ``skip`` methods."""
        while True:
            message, data, addr = await self.recv()
            if isinstance(message, Request) and message.method == method:
                return message, data, addr
            assert isinstance(message, Request) and message.method in skip, f"unexpected {message!r}"

    def pending(self) -> list[Request | Response]:
        """Whatever is already queued on the socket (loopback delivers at send time)."""
        out = []
        while True:
            try:
                data = self.sock.recv(65535)
            except BlockingIOError:
                return out
            out.append(parse_message(data))

    def send(self, message: Request | Response, addr: Addr) -> None:
        self.sock.sendto(message.to_bytes(), addr)

    def close(self) -> None:
        self.sock.close()


def reply(request: Request, status: int, *, to_tag: str | None = None, contact_port: int | None = None,
          sdp: bytes | None = None, extra: list[tuple[str, str]] | None = None) -> Response:
    response = make_response(request, status, to_tag=to_tag)
    if contact_port is not None:
        response.headers.add("Contact", f"<sip:peer@127.0.0.1:{contact_port}>")
    for name, value in extra or []:
        response.headers.add(name, value)
    if sdp:
        response.headers.add("Content-Type", "application/sdp")
        response.body = sdp
    return response


@pytest.fixture
async def ua() -> AsyncIterator[UserAgent]:
    stack = SipStack(StackConfig(port=0, timers={"t1": T1}))
    await stack.start()
    agent = UserAgent(stack)
    yield agent
    agent.close()
    await stack.stop()


@pytest.fixture
async def clocked_ua(clock: FakeClock) -> AsyncIterator[UserAgent]:
    """A UserAgent whose own timers run on the fake ``clock`` (the transaction layer's stay real)."""
    stack = SipStack(StackConfig(port=0, timers={"t1": T1}))
    await stack.start()
    agent = UserAgent(stack, clock=clock)
    yield agent
    agent.close()
    await stack.stop()


@pytest.fixture
def peer() -> AsyncIterator[Peer]:
    p = Peer()
    yield p
    p.close()


async def call(ua: UserAgent, peer: Peer, rec: LegRecorder, **kwargs):
    args = dict(request_uri=f"sip:200@127.0.0.1:{peer.port}", to_uri="sip:200@voipbin.test",
                from_uri="sip:100@voipbin.test", sdp=OFFER, handler=rec)
    args.update(kwargs)
    return await ua.invite(**args)


async def test_cancel_before_provisional_is_queued_until_180(ua: UserAgent, peer: Peer) -> None:
    rec = LegRecorder()
    session = await call(ua, peer, rec)
    invite, _, addr = await peer.request("INVITE")
    await session.cancel()
    queued = peer.pending()
    assert all(isinstance(m, Request) and m.method == "INVITE" for m in queued), "CANCEL too early"
    peer.send(reply(invite, 180, to_tag="p1"), addr)
    cancel, _, _ = await peer.request("CANCEL")
    assert cancel.top_via.branch == invite.top_via.branch  # §9.1
    assert str(cancel.cseq) == f"{invite.cseq.seq} CANCEL"
    assert cancel.to.tag is None and cancel.call_id == invite.call_id and str(cancel.uri) == str(invite.uri)
    peer.send(reply(cancel, 200, to_tag="p1"), addr)
    peer.send(reply(invite, 487, to_tag="p1"), addr)
    ack, _, _ = await peer.request("ACK", skip=("CANCEL",))
    assert ack.top_via.branch == invite.top_via.branch  # the transaction's ACK for a non-2xx
    await asyncio.wait_for(rec.ended.wait(), WAIT)
    assert rec.ended_with == [("rejected", 487)]
    assert rec.progress == [(180, None)]
    assert ua.live_count == 0


async def test_digest_retry_then_2xx_acked_reacked_and_fork_released(ua: UserAgent, peer: Peer) -> None:
    rec = LegRecorder()
    session = await call(ua, peer, rec, credentials=("100", "pw"))
    first, _, addr = await peer.request("INVITE")
    challenge = reply(first, 401, to_tag="c1",
                      extra=[("WWW-Authenticate", format_challenge("voipbin.test", "n0nce", "MD5"))])
    peer.send(challenge, addr)
    ack401, _, _ = await peer.request("ACK")
    assert ack401.top_via.branch == first.top_via.branch
    invite, _, _ = await peer.request("INVITE")
    assert invite.call_id == first.call_id and invite.from_.tag == first.from_.tag
    assert invite.cseq.seq == first.cseq.seq + 1 and invite.top_via.branch != first.top_via.branch
    creds = Credentials.from_header(invite.headers.get("Authorization") or "")
    assert creds.matches("pw", "INVITE")

    peer.send(reply(invite, 100), addr)
    ok = reply(invite, 200, to_tag="a1", contact_port=peer.port, sdp=ANSWER)
    peer.send(ok, addr)
    ack, ack_bytes, _ = await peer.request("ACK")
    assert str(ack.cseq) == f"{invite.cseq.seq} ACK" and ack.to.tag == "a1"
    assert str(ack.uri) == f"sip:peer@127.0.0.1:{peer.port}"  # the remote target (Contact)
    assert ack.headers.get("Authorization") == invite.headers.get("Authorization")
    await asyncio.wait_for(rec.answered.wait(), WAIT)
    assert rec.answered_sdp == [ANSWER] and session.state == "confirmed"

    peer.send(ok, addr)  # 2xx retransmission: the very same ACK again
    _, again, _ = await peer.request("ACK")
    assert again == ack_bytes

    fork = reply(invite, 200, to_tag="b2", contact_port=peer.port, sdp=ANSWER)
    peer.send(fork, addr)
    fork_ack, _, _ = await peer.request("ACK")
    assert fork_ack.to.tag == "b2"
    bye, _, _ = await peer.request("BYE")
    assert bye.to.tag == "b2" and bye.cseq.seq == invite.cseq.seq + 1
    peer.send(reply(bye, 200), addr)
    assert session.state == "confirmed" and not rec.ended.is_set()

    task = asyncio.ensure_future(session.bye())
    bye, _, _ = await peer.request("BYE")
    assert bye.to.tag == "a1" and bye.from_.tag == invite.from_.tag
    peer.send(reply(bye, 200), addr)
    await task
    assert rec.ended_with == [("local_bye", 200)] and rec.answered_sdp == [ANSWER]
    assert ua.live_count == 0


async def test_2xx_crossing_cancel_is_acked_and_byed(ua: UserAgent, peer: Peer) -> None:
    rec = LegRecorder()
    session = await call(ua, peer, rec)
    invite, _, addr = await peer.request("INVITE")
    peer.send(reply(invite, 180, to_tag="x1"), addr)
    await asyncio.wait_for(rec.ringing.wait(), WAIT)
    await session.cancel()
    cancel, _, _ = await peer.request("CANCEL")
    peer.send(reply(invite, 200, to_tag="x1", contact_port=peer.port, sdp=ANSWER), addr)  # too late
    peer.send(reply(cancel, 200, to_tag="x1"), addr)
    ack, _, _ = await peer.request("ACK", skip=("CANCEL",))
    assert ack.to.tag == "x1"
    bye, _, _ = await peer.request("BYE")
    peer.send(reply(bye, 200), addr)
    await asyncio.wait_for(rec.ended.wait(), WAIT)
    assert rec.ended_with == [("local_bye", 200)]
    assert not rec.answered.is_set()
    assert ua.live_count == 0


async def test_destination_override_and_record_route(ua: UserAgent, peer: Peer) -> None:
    """The Request-URI names a private address (a NATed contact); ``destination`` is where it goes.
    With a Record-Route in the 2xx the ACK and BYE carry Route and still go to the destination."""
    rec = LegRecorder()
    session = await call(ua, peer, rec, request_uri="sip:200@10.9.9.9:5070",
                         destination=("127.0.0.1", peer.port))
    invite, _, addr = await peer.request("INVITE")
    assert str(invite.uri) == "sip:200@10.9.9.9:5070"
    contact = invite.contacts[0].uri
    assert contact is not None and (contact.host, contact.port) == ua.stack.advertised
    ok = reply(invite, 200, to_tag="r1", sdp=ANSWER,
               extra=[("Record-Route", f"<sip:127.0.0.1:{peer.port};lr>"),
                      ("Contact", "<sip:200@10.9.9.9:5070>")])
    peer.send(ok, addr)
    ack, _, _ = await peer.request("ACK")
    assert str(ack.uri) == "sip:200@10.9.9.9:5070"
    assert ack.headers.get_all("Route") == [f"<sip:127.0.0.1:{peer.port};lr>"]
    await asyncio.wait_for(rec.answered.wait(), WAIT)
    task = asyncio.ensure_future(session.bye())
    bye, _, _ = await peer.request("BYE")
    assert bye.headers.get_all("Route") == [f"<sip:127.0.0.1:{peer.port};lr>"]
    peer.send(reply(bye, 200), addr)
    await task
    assert rec.ended_with == [("local_bye", 200)]


async def test_early_media_183_and_bye_answered_481_still_ends(ua: UserAgent, peer: Peer) -> None:
    rec = LegRecorder()
    session = await call(ua, peer, rec)
    invite, _, addr = await peer.request("INVITE")
    peer.send(reply(invite, 183, to_tag="e1", contact_port=peer.port, sdp=ANSWER), addr)
    await asyncio.wait_for(rec.ringing.wait(), WAIT)
    assert rec.progress == [(183, ANSWER)] and session.state == "early"
    assert session.remote_sdp == ANSWER
    peer.send(reply(invite, 200, to_tag="e1", contact_port=peer.port, sdp=ANSWER), addr)
    await peer.request("ACK")
    task = asyncio.ensure_future(session.bye())
    bye, _, _ = await peer.request("BYE")
    peer.send(reply(bye, 481), addr)
    await task
    assert rec.ended_with == [("local_bye", 481)]


async def test_bye_to_a_dead_peer_ends_the_session_at_once(clocked_ua: UserAgent, peer: Peer,
                                                           clock: FakeClock) -> None:
    """§15.1.1: the session ends when the BYE is sent (at most ``bye_wait_s`` later, on the UA's
    clock), not after Timer F; the BYE transaction keeps retransmitting in the background (issue 14)."""
    ua = clocked_ua
    rec = LegRecorder()
    ua.bye_wait_s = 0.2
    session = await call(ua, peer, rec)
    invite, _, addr = await peer.request("INVITE")
    peer.send(reply(invite, 200, to_tag="d1", contact_port=peer.port, sdp=ANSWER), addr)
    await peer.request("ACK")
    bye = asyncio.ensure_future(session.bye())  # the peer never answers
    first, _, _ = await peer.request("BYE")
    assert clock.pending() == [0.2]  # the BYE wait, the only timer of the UA
    clock.advance(0.19)
    await asyncio.sleep(0)
    assert not bye.done() and not rec.ended.is_set()
    clock.advance(0.01)
    await asyncio.wait_for(bye, WAIT)  # long before Timer F (64*T1 on the transaction layer's clock)
    assert rec.ended_with == [("local_bye", None)] and ua.live_count == 0
    again, _, _ = await peer.request("BYE", skip=())  # retransmitted after the session ended
    assert again.headers.get("Call-ID") == first.headers.get("Call-ID")


async def test_no_response_ends_with_timer_b(ua: UserAgent, peer: Peer) -> None:
    rec = LegRecorder()
    await call(ua, peer, rec)
    await asyncio.wait_for(rec.ended.wait(), 64 * T1 + WAIT)
    assert rec.ended_with == [("timeout", None)]
    assert len([m for m in peer.pending() if isinstance(m, Request)]) >= 3  # Timer A retransmissions
    assert ua.live_count == 0


async def test_remote_bye_in_dialog(ua: UserAgent, peer: Peer) -> None:
    rec = LegRecorder()
    session = await call(ua, peer, rec)
    invite, _, addr = await peer.request("INVITE")
    peer.send(reply(invite, 200, to_tag="z1", contact_port=peer.port, sdp=ANSWER), addr)
    await peer.request("ACK")
    assert session.dialog is not None
    host, port = addr
    bye = session.dialog.create_request("BYE", via_host="127.0.0.1", via_port=peer.port)
    # seen from the peer: swap the tags and address it to us
    bye.headers.set("From", invite.headers.get("To", "") + ";tag=z1")
    bye.headers.set("To", invite.headers.get("From", ""))
    bye.headers.set("CSeq", "1 BYE")
    peer.send(bye, (host, port))
    response, _, _ = await peer.recv()
    assert isinstance(response, Response) and response.status == 200
    assert rec.ended_with == [("remote_bye", None)]
    assert ua.live_count == 0


async def test_uas_invite_retransmitted_after_2xx_gets_same_2xx(ua: UserAgent, peer: Peer) -> None:
    """A caller whose INVITE crossed our 200 retransmits it: the same 200 goes back, no second call."""
    rec = LegRecorder()
    calls: list[IncomingInvite] = []

    async def answer(incoming: IncomingInvite) -> None:
        calls.append(incoming)
        incoming.answer(ANSWER, rec)

    ua.on_incoming_invite = answer
    dest = ("127.0.0.1", ua.stack.port)
    invite = Request(method="INVITE", uri=parse_uri(f"sip:200@127.0.0.1:{ua.stack.port}"))
    for name, value in (("Via", f"SIP/2.0/UDP 127.0.0.1:{peer.port};branch=z9hG4bKretx1;rport"),
                        ("Max-Forwards", "70"), ("From", "<sip:100@peer>;tag=caller1"),
                        ("To", "<sip:200@voipbin.test>"), ("Call-ID", "retx-call@peer"),
                        ("CSeq", "7 INVITE"), ("Contact", f"<sip:100@127.0.0.1:{peer.port}>"),
                        ("Content-Type", "application/sdp")):
        invite.headers.add(name, value)
    invite.body = OFFER
    peer.send(invite, dest)

    async def final() -> Response:
        while True:
            message, _, _ = await peer.recv()
            if isinstance(message, Response) and message.status >= 200:
                return message

    first = await final()
    assert first.status == 200 and first.body == ANSWER and first.to.tag
    peer.send(invite, dest)  # the retransmission
    second = await final()
    assert second.to.tag == first.to.tag and second.cseq == first.cseq
    assert len(calls) == 1
    ack = Request(method="ACK", uri=first.contacts[0].uri)  # type: ignore[arg-type]
    for name, value in (("Via", f"SIP/2.0/UDP 127.0.0.1:{peer.port};branch=z9hG4bKack1;rport"),
                        ("Max-Forwards", "70"), ("From", "<sip:100@peer>;tag=caller1"),
                        ("To", first.headers.get("To") or ""), ("Call-ID", "retx-call@peer"),
                        ("CSeq", "7 ACK")):
        ack.headers.add(name, value)
    peer.send(ack, dest)
    await asyncio.wait_for(rec.answered.wait(), WAIT)
    assert rec.answered_sdp == [OFFER]
    session = calls[0].session
    assert session is not None and session.state == "confirmed"
    task = asyncio.ensure_future(session.bye())
    bye, _, addr = await peer.request("BYE", skip=())
    assert bye.to.tag == "caller1" and str(bye.uri) == f"sip:100@127.0.0.1:{peer.port}"
    peer.send(reply(bye, 200), addr)
    await task
    assert rec.ended_with == [("local_bye", 200)]
    assert ua.live_count == 0
