"""Dialog state (RFC 3261 §12) without I/O."""

from __future__ import annotations

from voipbin.sip.dialog import Dialog
from voipbin.sip.message import Request, make_response
from voipbin.sip.parser import parse_message

INVITE = (
    "INVITE sip:bob@192.0.2.2 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKd1\r\n"
    "Max-Forwards: 70\r\nFrom: \"Alice\" <sip:alice@a.example>;tag=ft\r\nTo: <sip:bob@b.example>\r\n"
    "Call-ID: dlg-1\r\nCSeq: 10 INVITE\r\nContact: <sip:alice@192.0.2.1>\r\n"
    "Record-Route: <sip:p1.example;lr>, <sip:p2.example;lr>\r\nContent-Length: 0\r\n\r\n"
).encode()


def invite() -> Request:
    msg = parse_message(INVITE)
    assert isinstance(msg, Request)
    return msg


def test_uac_and_uas_dialogs_mirror_each_other() -> None:
    req = invite()
    ok = make_response(req, 200, to_tag="tt")
    for name in ("Record-Route",):
        for value in req.headers.get_all(name):
            ok.headers.add(name, value)
    ok.headers.add("Contact", "<sip:bob@192.0.2.2:5080>")
    uac = Dialog.from_uac(req, ok)
    uas = Dialog.from_uas(req, "tt")
    assert uac.id.call_id == uas.id.call_id
    assert (uac.local_tag, uac.remote_tag) == (uas.remote_tag, uas.local_tag) == ("ft", "tt")
    assert uac.route_set == ["<sip:p2.example;lr>", "<sip:p1.example;lr>"]
    assert uas.route_set == ["<sip:p1.example;lr>", "<sip:p2.example;lr>"]

    bye = uac.create_request("BYE", via_host="192.0.2.1", via_port=5060)
    assert bye.cseq.seq == 11 and str(bye.uri) == "sip:bob@192.0.2.2:5080"
    assert bye.headers.get_all("Route") == uac.route_set
    assert bye.from_.tag == "ft" and bye.to.tag == "tt"
    assert uas.matches(parse_message(bye.to_bytes()))  # type: ignore[arg-type]
    assert uas.accept_request(bye) is None
    assert uas.accept_request(bye) == (500, "CSeq Out Of Order")


def test_strict_route_rewrites_request_uri() -> None:
    req = invite()
    ok = make_response(req, 200, to_tag="tt")
    ok.headers.add("Record-Route", "<sip:strict.example>")
    ok.headers.add("Contact", "<sip:bob@192.0.2.2>")
    bye = Dialog.from_uac(req, ok).create_request("BYE", via_host="h", via_port=1)
    assert str(bye.uri) == "sip:strict.example"
    assert bye.headers.get_all("Route") == ["<sip:bob@192.0.2.2>"]
