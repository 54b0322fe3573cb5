"""The caller's address behind the SIP edge (:func:`voipbin.sip.path.via_source`), and a trunk trusted
by address through it (:class:`voipbin.calls.inbound.InboundCalls`): the sender's Via, as the edge
proxy stamped it (``received``/``rport``), counts only in a packet that came from a trusted proxy."""

from __future__ import annotations

from typing import cast

from voipbin.sip.message import Request
from voipbin.sip.parser import parse_message
from voipbin.sip.path import via_source

EDGE = ("192.0.2.1", 5060)
TRUNK = ("198.51.100.7", 5080)
TRUSTED = {"192.0.2.1"}


def invite(*vias: str) -> Request:
    head = "".join(f"Via: {v}\r\n" for v in vias)
    raw = (f"INVITE sip:+15550100000@192.0.2.1 SIP/2.0\r\n{head}Max-Forwards: 69\r\n"
           "From: <sip:+15551230000@198.51.100.7>;tag=a\r\nTo: <sip:+15550100000@192.0.2.1>\r\n"
           "Call-ID: via-test\r\nCSeq: 1 INVITE\r\nContact: <sip:c@198.51.100.7>\r\nContent-Length: 0\r\n\r\n")
    return cast(Request, parse_message(raw.encode()))


EDGE_VIA = "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKedge"


def test_behind_a_trusted_proxy_the_sender_is_where_the_proxy_says() -> None:
    stamped = invite(EDGE_VIA, "SIP/2.0/UDP 10.0.0.5:5080;branch=z9hG4bKt;received=198.51.100.7;rport=5080")
    assert via_source(stamped, EDGE, TRUSTED) == TRUNK
    plain = invite(EDGE_VIA, "SIP/2.0/UDP 198.51.100.7:5080;branch=z9hG4bKt")  # sent-by was right: no received
    assert via_source(plain, EDGE, TRUSTED) == TRUNK
    default_port = invite(EDGE_VIA, "SIP/2.0/UDP 198.51.100.7;branch=z9hG4bKt")
    assert via_source(default_port, EDGE, TRUSTED) == ("198.51.100.7", 5060)


def test_a_via_from_anyone_else_is_not_believed() -> None:
    spoofed = invite(EDGE_VIA, "SIP/2.0/UDP 198.51.100.7:5080;branch=z9hG4bKt;received=198.51.100.7;rport=5080")
    attacker = ("203.0.113.9", 40000)
    assert via_source(spoofed, attacker, TRUSTED) == attacker  # not from the edge: the packet's source
    assert via_source(spoofed, attacker, set()) == attacker  # no edge configured
    alone = invite(EDGE_VIA)  # the proxy's own request: nothing below its Via
    assert via_source(alone, EDGE, TRUSTED) == EDGE
    named = invite(EDGE_VIA, "SIP/2.0/UDP trunk.example:5080;branch=z9hG4bKt")  # no IP address: not used
    assert via_source(named, EDGE, TRUSTED) == EDGE
