"""Property tests: parse(serialize(msg)) round-trips; no input makes the receive path raise."""

from __future__ import annotations

from sip_fakes import FakeTransport
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torture_corpus import VALID

from voipbin.sip.headers import Address
from voipbin.sip.message import Headers, Request, Response
from voipbin.sip.parser import StreamParser, parse_message
from voipbin.sip.stack import SipStack, StackConfig
from voipbin.sip.uri import SipUri

TOKEN = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.!%*_+`'~", min_size=1,
                max_size=12)
HOST = st.from_regex(r"[a-z][a-z0-9]{0,10}(\.[a-z][a-z0-9]{0,8}){0,3}", fullmatch=True)
USER = st.from_regex(r"[A-Za-z0-9_.!~*'()&=+$,;?/-]{1,12}", fullmatch=True).filter(
    lambda u: "@" not in u and ";" not in u and "?" not in u)
PARAM_NAME = st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True)
PARAM_VALUE = st.none() | st.from_regex(r"[A-Za-z0-9._~-]{1,10}", fullmatch=True)
VALUE = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=","),
                min_size=1, max_size=30).map(str.strip).filter(bool) | st.text(
    st.characters(min_codepoint=0xA0, max_codepoint=0x2FFF), min_size=1, max_size=8)
UNKNOWN_NAME = st.from_regex(r"X-[A-Za-z0-9-]{1,10}", fullmatch=True)


@st.composite
def sip_uris(draw) -> SipUri:
    return SipUri(
        scheme=draw(st.sampled_from(["sip", "sips"])), user=draw(st.none() | USER),
        host=draw(HOST), port=draw(st.none() | st.integers(1, 65535)),
        params=draw(st.dictionaries(PARAM_NAME, PARAM_VALUE, max_size=3)),
    )


@st.composite
def requests(draw) -> Request:
    method = draw(TOKEN)
    headers = Headers()
    headers.add("Via", f"SIP/2.0/UDP {draw(HOST)}:{draw(st.integers(1, 65535))};branch=z9hG4bK{draw(TOKEN)}")
    from_ = Address(draw(sip_uris()), draw(st.none() | st.text("abc XYZ", min_size=1, max_size=8)),
                    {"tag": draw(TOKEN)})
    headers.add("From", str(from_))
    headers.add("To", str(Address(draw(sip_uris()))))
    headers.add("Call-ID", draw(TOKEN) + "@" + draw(HOST))
    headers.add("CSeq", f"{draw(st.integers(0, 2**31 - 1))} {method}")
    for name, value in draw(st.lists(st.tuples(UNKNOWN_NAME, VALUE), max_size=5)):
        headers.add(name, value)
    body = draw(st.binary(max_size=200))
    return Request(headers, body, method=method, uri=draw(sip_uris()))


@given(requests())
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_request_round_trip(request: Request) -> None:
    parsed = parse_message(request.to_bytes())
    assert isinstance(parsed, Request)
    assert parsed.method == request.method
    assert str(parsed.uri) == str(request.uri)
    assert parsed.body == request.body
    expected = [(n, v) for n, v in request.headers] + [("Content-Length", str(len(request.body)))]
    assert list(parsed.headers) == expected
    assert parsed.from_.tag == request.from_.tag
    assert parsed.to_bytes() == request.to_bytes()


@given(st.integers(100, 699), st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20),
       st.binary(max_size=50))
def test_response_round_trip(status: int, reason: str, body: bytes) -> None:
    response = Response(Headers([("Call-ID", "x"), ("CSeq", "1 INVITE")]), body, status=status,
                        reason=reason.strip())
    parsed = parse_message(response.to_bytes())
    assert isinstance(parsed, Response)
    assert (parsed.status, parsed.reason, parsed.body) == (status, reason.strip(), body)


_STACK = SipStack(StackConfig(port=5060, rate_per_source_s=1e9, rate_burst=1e9))
# These tests drive the synchronous receive path without an event loop; a request that survives
# a mutation is dispatched to its handler in a task, which is not what is under test here.
_STACK._spawn = lambda coro: coro.close()  # type: ignore[method-assign]
_TRANSPORT = FakeTransport()


@given(st.binary(max_size=2000))
@settings(max_examples=500)
def test_random_bytes_never_escape_the_receive_path(data: bytes) -> None:
    _STACK.receive(data, ("192.0.2.1", 5060), _TRANSPORT)
    assert _STACK.stats["internal_errors"] == 0


@given(st.sampled_from([v[1] for v in VALID]), st.lists(st.tuples(st.integers(0, 5000),
       st.integers(0, 255)), min_size=1, max_size=8))
@settings(max_examples=500)
def test_mutated_messages_never_escape_the_receive_path(data: bytes, flips: list[tuple[int, int]]) -> None:
    buf = bytearray(data)
    for pos, byte in flips:
        buf[pos % len(buf)] = byte
    _STACK.receive(bytes(buf), ("192.0.2.1", 5060), _TRANSPORT)
    assert _STACK.stats["internal_errors"] == 0
    for sent, _ in _TRANSPORT.sent[-2:]:
        assert parse_message(sent)  # whatever we answer is itself parseable


@given(st.binary(max_size=3000), st.integers(1, 50))
def test_stream_parser_never_raises_anything_but_parse_errors(data: bytes, chunk: int) -> None:
    from voipbin.sip.errors import SipParseError
    parser = StreamParser(max_message_bytes=2000)
    try:
        for i in range(0, len(data), chunk):
            parser.feed(data[i:i + chunk])
    except SipParseError:
        pass


def _outcome(parse, text: str) -> object:
    """What ``parse(text)`` gives: the value, or the type and message of what it raised."""
    try:
        return parse(text)
    except Exception as exc:  # noqa: BLE001 - the general path's exceptions are part of what must match
        return type(exc), str(exc)


# URI-ish text: the pieces the common-shape regexes look for, and the ones that must send them to the
# general path (an @ in a param, LWS, empty or out-of-range ports, quotes, brackets, other schemes)
URI_TEXT = st.lists(st.sampled_from(
    ["sip:", "sips:", "SIP:", "tel:", "alice", "Bob", "1000", "@", ":", ";", "?", "=", "5060", "0", "65536",
     "example.com", "127.0.0.1", "[::1]", "[2001:db8::1]", "]", "[", "lr", "transport=tcp", "tag=1", " ", "\t",
     '"', "<", ">", ",", "/", "%41", "-", "_", ".", "²", "é", "\n"]), max_size=12).map("".join)
PIECE = st.sampled_from
VIA_TEXT = st.tuples(
    PIECE(["SIP/2.0/", "SIP / 2.0 /", "sip/2.0/", "SIP/3.0/", " SIP/2.0/", ""]), PIECE(["UDP", "tcp", "TLS-SCTP", "", "U;P"]),
    PIECE([" ", "\t", "  ", "", "\n"]), PIECE(["host", "127.0.0.2", "[::1]", "[::1", "user@host", "h?x", "", "é"]),
    PIECE(["", ":5060", ":0", ":70000", ":", " :5060", ":65535", ":²"]), PIECE(["", " ", "\t"]),
    PIECE(["", ";branch=z9hG4bK1;rport", ";rport ", "; received = 1.2.3.4", ';x="a;b"', ';x="a', ";@", "?x"]),
).map("".join)
URI_SHAPED = st.tuples(
    PIECE(["sip:", "sips:", "SIP:", "tel:", "sip", ""]), PIECE(["", "alice@", "alice:pw@", "a:@", "@", "a b@", "a@b@", "a;x=1@"]),
    PIECE(["example.com", "127.0.0.1", "[::1]", "[::1", "", "é.com", "a,b"]),
    PIECE(["", ":5060", ":0", ":65536", ":", ":²", ":00080"]),
    PIECE(["", ";lr", ";transport=TCP;lr", ";p=a@b", ';x="a;b"', ';x="a', ";", ";=x"]),
    PIECE(["", "?", "?Subject=hi", "?a@b", "?x\ny"]),
).map("".join)


@given(URI_TEXT | URI_SHAPED)
@settings(max_examples=2000)
def test_uri_common_shape_parses_as_the_general_path(text: str) -> None:
    from voipbin.sip.uri import _parse_uri_general, parse_uri
    assert _outcome(parse_uri, text) == _outcome(lambda t: _parse_uri_general(t.strip()), text)


@given(VIA_TEXT)
@settings(max_examples=2000)
def test_via_common_shape_parses_as_the_general_path(text: str) -> None:
    from voipbin.sip.headers import Via
    assert _outcome(Via.parse, text) == _outcome(Via._parse_general, text)


def _split_unquoted_by_char(text: str, sep: str) -> list[str]:
    """The reference: split_unquoted as a character loop (its first implementation)."""
    from voipbin.sip.errors import SipParseError
    parts, start, in_quote, in_angle, i = [], 0, False, False, 0
    while i < len(text):
        ch = text[i]
        if in_quote:
            if ch == "\\":
                i += 1
            elif ch == '"':
                in_quote = False
        elif ch == '"':
            in_quote = True
        elif ch == "<":
            in_angle = True
        elif ch == ">":
            in_angle = False
        elif ch == sep and not in_angle:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    if in_quote:
        raise SipParseError("Unterminated Quoted String")
    parts.append(text[start:])
    return parts


@given(st.text(st.sampled_from(list('ab ,;="\\<>\n')), max_size=40), st.sampled_from([",", ";"]))
@settings(max_examples=2000)
def test_split_unquoted_matches_the_character_loop(text: str, sep: str) -> None:
    from voipbin.sip.grammar import split_unquoted
    assert _outcome(lambda t: split_unquoted(t, sep), text) == _outcome(lambda t: _split_unquoted_by_char(t, sep), text)


AUTH_PARAMS = st.lists(st.tuples(
    PIECE(["", " ", "\t", "\n"]), PIECE(["username", "Realm", "nc", "a b", "", "x=y", "é"]), PIECE(["=", " = ", "", "=="]),
    PIECE(['"1000"', '"a,b"', '"a\\\\"b"', '"<x>"', '"open', "MD5", "", "a b", "00000001", '"x"y', "a=b", "<sip:a>"]),
    PIECE(["", " ", "\n"])), max_size=6).map(lambda ps: ",".join("".join(p) for p in ps)) | st.text(
    st.sampled_from(list('ab =,"\\<> \t')), max_size=30)


@given(AUTH_PARAMS)
@settings(max_examples=2000)
def test_auth_params_of_the_common_shape_parse_as_the_general_loop(rest: str) -> None:
    from voipbin.sip.digest import _auth_params, _common_auth_params
    common = _common_auth_params(rest)
    if common is not None:
        assert common == _auth_params(rest)
