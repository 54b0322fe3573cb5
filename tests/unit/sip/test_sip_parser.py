"""Parser and serializer: RFC 3261 §7 framing, §7.3 header forms, §20 headers, §25 grammar."""

from __future__ import annotations

import pytest

from voipbin.sip.errors import SipParseError
from voipbin.sip.headers import Address, Via
from voipbin.sip.message import Headers, Request, Response, make_response, parse_multipart
from voipbin.sip.parser import StreamParser, parse_message, validate_request
from voipbin.sip.uri import parse_uri

REGISTER = (
    b"REGISTER sip:c1.registrar.voipbin.test SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: <sip:100@c1.registrar.voipbin.test>\r\n"
    b"From: <sip:100@c1.registrar.voipbin.test>;tag=456248\r\n"
    b"Call-ID: 843817637684230@998sdasdh09\r\n"
    b"CSeq: 1826 REGISTER\r\n"
    b"Contact: <sip:100@10.0.0.1:5060>\r\n"
    b"Expires: 7200\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def test_parses_request_and_typed_headers() -> None:
    msg = parse_message(REGISTER)
    assert isinstance(msg, Request)
    assert msg.method == "REGISTER"
    assert msg.uri.host == "c1.registrar.voipbin.test"
    assert msg.top_via.branch == "z9hG4bK776asdhds"
    assert "rport" in msg.top_via.params
    assert msg.cseq.seq == 1826 and msg.cseq.method == "REGISTER"
    assert msg.from_.tag == "456248"
    assert msg.to.uri is not None and msg.to.uri.user == "100"
    assert validate_request(msg) is None


def test_compact_forms_and_case_insensitive_names() -> None:
    data = (
        b"OPTIONS sip:x@example.com SIP/2.0\r\nv: SIP/2.0/TCP h:5060;branch=z9hG4bK1\r\n"
        b"f: <sip:a@b>;tag=1\r\nt: sip:x@example.com\r\ni: abc\r\ncseq: 1 OPTIONS\r\n"
        b"MAX-FORWARDS: 70\r\nl: 0\r\n\r\n"
    )
    msg = parse_message(data)
    assert msg.headers.get("Call-ID") == "abc"
    assert msg.headers.get("call-id") == "abc"
    assert msg.headers.get("i") == "abc"
    assert msg.headers.get("Max-Forwards") == "70"
    assert validate_request(msg) is None  # type: ignore[arg-type]
    assert b"Call-ID: abc\r\n" in msg.to_bytes()


def test_header_folding_is_unfolded() -> None:
    data = REGISTER.replace(b"CSeq: 1826 REGISTER\r\n", b"CSeq: 1826\r\n   \tREGISTER\r\n")
    msg = parse_message(data)
    assert msg.cseq.method == "REGISTER"
    assert msg.headers.get("CSeq") == "1826 REGISTER"


def test_comma_lists_equal_repeated_headers() -> None:
    a = parse_message(REGISTER.replace(
        b"Contact: <sip:100@10.0.0.1:5060>\r\n",
        b'Contact: <sip:100@10.0.0.1:5060>, "Bob, Jr" <sip:100@10.0.0.2>;q=0.5\r\n'))
    b = parse_message(REGISTER.replace(
        b"Contact: <sip:100@10.0.0.1:5060>\r\n",
        b'Contact: <sip:100@10.0.0.1:5060>\r\nContact: "Bob, Jr" <sip:100@10.0.0.2>;q=0.5\r\n'))
    assert a.headers == b.headers
    assert [c.display_name for c in a.contacts] == [None, "Bob, Jr"]
    assert a.contacts[1].params == {"q": "0.5"}


def test_header_names_match_in_any_case_and_compact_form() -> None:
    msg = parse_message(REGISTER.replace(b"Call-ID:", b"i:").replace(b"CSeq:", b"cseq:"))  # on the wire
    msg.headers.add("x-Custom", "1")
    for name in ("call-id", "CALL-ID", "i", "Call-ID"):
        assert msg.headers.get(name) == "843817637684230@998sdasdh09"
        assert name in msg.headers
    assert msg.headers.get_all("CSEQ") == ["1826 REGISTER"]
    assert msg.headers.get("X-CUSTOM") == "1" and "x-custom" in msg.headers and "X-Other" not in msg.headers
    built = Headers([("call-id", "a"), ("X-Foo", "b")])  # stored under the canonical spelling
    assert list(built) == [("Call-ID", "a"), ("X-Foo", "b")]
    assert built.get("Call-Id") == "a" and built.get("x-foo") == "b"


def test_non_list_headers_keep_commas() -> None:
    msg = parse_message(REGISTER.replace(b"Expires: 7200\r\n", b"Date: Sat, 13 Nov 2010 23:29:00 GMT\r\n"))
    assert msg.headers.get_all("Date") == ["Sat, 13 Nov 2010 23:29:00 GMT"]


def test_bare_lf_line_ends_are_tolerated() -> None:
    msg = parse_message(REGISTER.replace(b"\r\n", b"\n"))
    assert validate_request(msg) is None  # type: ignore[arg-type]


def test_response_parse_and_body_by_content_length() -> None:
    data = (b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKa\r\nCall-ID: x\r\n"
            b"CSeq: 2 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=0\nGARBAGE")
    msg = parse_message(data)
    assert isinstance(msg, Response)
    assert (msg.status, msg.reason, msg.body) == (200, "OK", b"v=0\n")


def test_short_body_is_a_defect_answered_400() -> None:
    msg = parse_message(REGISTER.replace(b"Content-Length: 0", b"Content-Length: 50"))
    assert validate_request(msg) == (400, "Content-Length Mismatch")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("remove", "reason"),
    [(b"Call-ID", "Missing Call-ID"), (b"From", "Missing From"), (b"To", "Missing To"),
     (b"CSeq", "Missing CSeq")],
)
def test_missing_mandatory_header_reason(remove: bytes, reason: str) -> None:
    lines = [ln for ln in REGISTER.split(b"\r\n") if not ln.startswith(remove + b":")]
    msg = parse_message(b"\r\n".join(lines))
    assert validate_request(msg) == (400, reason)  # type: ignore[arg-type]


def test_cseq_method_mismatch() -> None:
    msg = parse_message(REGISTER.replace(b"1826 REGISTER", b"1826 INVITE"))
    assert validate_request(msg) == (400, "CSeq Method Mismatch")  # type: ignore[arg-type]


def test_serialize_sets_content_length() -> None:
    msg = parse_message(REGISTER)
    msg.body = b"hello"
    again = parse_message(msg.to_bytes())
    assert again.body == b"hello"
    assert again.headers.get("Content-Length") == "5"


def test_make_response_copies_and_tags() -> None:
    request = parse_message(REGISTER)
    assert isinstance(request, Request)
    response = make_response(request, 401)
    assert response.headers.get_all("Via") == request.headers.get_all("Via")
    assert response.to.tag
    assert make_response(request, 100).to.tag is None


@pytest.mark.parametrize("to", ["<sip:100@c1.registrar.voipbin.test>", "sip:100@c1.example", '"Bob" <SIP:100@c1.example>;x=1',
                                "<sip:100@c1.example>;tag", "<sip:100@c1.example>;TAG", "not an address <"])
def test_a_to_tag_is_added_as_by_parsing_the_address(to: str) -> None:
    """The tagged To of a response is the request's To re-serialized with the tag, however often the same
    To is answered (the re-serialization is remembered per value)."""
    request = parse_message(REGISTER.replace(b"To: <sip:100@c1.registrar.voipbin.test>", b"To: " + to.encode()))
    assert isinstance(request, Request)
    try:
        expected = Address.parse(to)
        expected.params["tag"] = "t1"
        wanted = str(expected)
    except SipParseError:
        wanted = to
    for _ in range(2):
        assert make_response(request, 200, to_tag="t1").headers.get("To") == wanted


def test_uri_forms() -> None:
    uri = parse_uri("sips:alice:pw@[2001:db8::10]:5071;transport=tcp;lr?Subject=x")
    assert (uri.scheme, uri.user, uri.password, uri.host, uri.port) == (
        "sips", "alice", "pw", "[2001:db8::10]", 5071)
    assert uri.params == {"transport": "tcp", "lr": None}
    assert str(uri) == "sips:alice:pw@[2001:db8::10]:5071;transport=tcp;lr?Subject=x"
    assert parse_uri("tel:+1-201-555-0123").opaque == "+1-201-555-0123"
    assert parse_uri("SIP:Bob@Example.COM").aor() == "sip:Bob@example.com"
    for bad in ("", "sip:", "sip:a@", "sip:host:99999", "nocolon", "sip:a b@c"):
        with pytest.raises(SipParseError):
            parse_uri(bad)


def test_address_and_via_forms() -> None:
    a = Address.parse('"A \\"quoted\\" name" <sip:a@b;transport=udp>;tag=x')
    assert a.display_name == 'A "quoted" name' and a.tag == "x"
    assert a.uri is not None and a.uri.params == {"transport": "udp"}
    b = Address.parse("sip:a@b;tag=y")  # addr-spec: params belong to the header
    assert b.tag == "y" and b.uri is not None and b.uri.params == {}
    assert Address.parse("*").is_wildcard
    v = Via.parse("SIP / 2.0 / UDP 192.0.2.1:5060 ;branch=z9hG4bK1;received=1.2.3.4")
    assert (v.transport, v.host, v.port, v.branch) == ("UDP", "192.0.2.1", 5060, "z9hG4bK1")
    assert v.params["received"] == "1.2.3.4"


def test_multipart_body() -> None:
    body = (b"--b1\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n"
            b"--b1\r\nContent-Type: application/isup\r\n\r\n\x01\x02\r\n--b1--\r\n")
    parts = parse_multipart(body, 'multipart/mixed;boundary="b1"')
    assert [p.content_type for p in parts] == ["application/sdp", "application/isup"]
    assert parts[0].body == b"v=0" and parts[1].body == b"\x01\x02"
    with pytest.raises(SipParseError):
        parse_multipart(body, "multipart/mixed")


def test_stream_parser_frames_by_content_length() -> None:
    msg2 = REGISTER.replace(b"Content-Length: 0", b"Content-Length: 3") + b"abc"
    stream = b"\r\n\r\n" + REGISTER + msg2
    parser = StreamParser()
    out: list[bytes] = []
    for i in range(0, len(stream), 7):  # arbitrary chunking
        out += parser.feed(stream[i:i + 7])
    assert out == [REGISTER, msg2]
    assert parse_message(out[1]).body == b"abc"


def test_stream_parser_refuses_oversize() -> None:
    parser = StreamParser(max_message_bytes=1000)
    with pytest.raises(SipParseError, match="Message Too Large"):
        parser.feed(REGISTER.replace(b"Content-Length: 0", b"Content-Length: 5000"))
    with pytest.raises(SipParseError, match="Message Too Large"):
        StreamParser(max_message_bytes=100).feed(b"X" * 200)


def test_remembered_names_and_values_stay_bounded() -> None:
    """Header spellings, From/To values seen to parse and untagged To values are remembered to skip work;
    unique or long ones from a sender cannot grow those tables past their bounds."""
    from voipbin.sip import message as message_module
    from voipbin.sip import parser as parser_module

    long_user = "u" * 300
    for i in range(9000):
        data = REGISTER.replace(b"Expires: 7200", f"X-Unique-{i}: 1".encode()).replace(
            b"To: <sip:100@", f"To: <sip:{i}@".encode())
        if i % 100 == 0:
            data = data.replace(b"From: <sip:100@", f"From: <sip:{long_user}@".encode())
        request = parse_message(data)
        assert isinstance(request, Request) and validate_request(request) is None
        make_response(request, 401)
    assert len(parser_module._NAMES) <= parser_module._MAX_NAMES
    assert len(parser_module._GOOD_ADDRESSES) <= parser_module._MAX_GOOD_ADDRESSES
    assert len(message_module._UNTAGGED) <= message_module._MAX_UNTAGGED
    assert not any(long_user in value for value in parser_module._GOOD_ADDRESSES)
