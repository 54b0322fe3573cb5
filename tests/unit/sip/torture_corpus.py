"""A torture corpus in the spirit of RFC 4475, written for this project.

Each entry: (name, raw message, expectation). Expectation is "valid" (parses, passes validation),
("reply", status, reason) (parses; the stack answers statelessly with that status and reason) or
"drop" (cannot be parsed or answered; the stack drops and counts it).
"""

from __future__ import annotations

CRLF = b"\r\n"


def msg(*lines: str, body: bytes = b"") -> bytes:
    return CRLF.join(line.encode("utf-8") for line in lines) + CRLF + CRLF + body


BASE = [
    "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-t0rture;rport",
    "Max-Forwards: 70",
    "From: <sip:alice@voipbin.test>;tag=a1",
    "To: <sip:bob@voipbin.test>",
    "Call-ID: torture-1@192.0.2.10",
]


def options(*extra: str, cseq: str = "1 OPTIONS", start: str = "OPTIONS sip:bob@voipbin.test SIP/2.0",
            drop: tuple[str, ...] = ()) -> bytes:
    lines = [start] + [h for h in BASE if h.split(":")[0] not in drop]
    if "CSeq" not in drop:
        lines.append(f"CSeq: {cseq}")
    return msg(*lines, *extra, "Content-Length: 0")


VALID: list[tuple[str, bytes]] = [
    ("tortuous whitespace, folding, compact and mixed-case names", msg(
        "OPTIONS   sip:bob@voipbin.test   SIP/2.0",
        "v:  SIP/2.0/UDP 192.0.2.10:5060 ;  branch = z9hG4bK-ws1 ; rport",
        "via  :SIP  /  2.0 / TCP  proxy.example.com",
        "mAx-ForWarDs:   70",
        "f: \"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>",
        "   ;",
        "   tag = 98asjd8",
        "t: sip:bob@voipbin.test",
        "i: ws-1@192.0.2.10",
        "CSEQ:",
        "\t 8",
        "    OPTIONS",
        "NewFangledHeader:   newfangled value",
        " continued newfangled value",
        "UnknownHeaderWithUnusualValue: ;;,,;;,;",
        "Subject:",
        "l: 0")),
    ("unusual but legal method token", msg(
        "!interesting-Method0123456789_*+`.%indeed'~ sip:bob@voipbin.test SIP/2.0",
        *BASE, "CSeq: 139122385 !interesting-Method0123456789_*+`.%indeed'~", "Content-Length: 0")),
    ("escaped characters in the Request-URI user", options(
        start="OPTIONS sip:sips%3Auser%40example.com@voipbin.test;other-param=summit SIP/2.0")),
    ("semicolon inside the user part", options(
        start="OPTIONS sip:user;par=u%40example.net@voipbin.test SIP/2.0")),
    ("telephone-subscriber user with password-like colon", options(
        start="OPTIONS sip:+1-212-555-1212:1234@gateway.com;user=phone SIP/2.0")),
    ("IPv6 reference in Request-URI and Via", msg(
        "OPTIONS sip:[2001:db8::10]:5070 SIP/2.0",
        "Via: SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bKas3-111",
        *BASE[1:], "CSeq: 1 OPTIONS", "Content-Length: 0")),
    ("display name without quotes and without space before <", options(
        "Contact: caller<sip:caller@192.0.2.10>;expires=900")),
    ("several Via forms and unknown transports", msg(
        "OPTIONS sip:bob@voipbin.test SIP/2.0", *BASE,
        "Via: SIP/2.0/SCTP sctp.example.com;branch=z9hG4bKsctp, SIP/2.0/TLS tls.example.com:5061;branch=z9hG4bKtls",
        "CSeq: 1 OPTIONS", "Content-Length: 0")),
    ("long values and many headers", options(
        *[f"X-Long-{i}: " + "a" * 500 for i in range(10)])),
    ("multipart body", msg(
        "OPTIONS sip:bob@voipbin.test SIP/2.0", *BASE, "CSeq: 1 OPTIONS",
        'Content-Type: multipart/mixed;boundary=unique-boundary-1', "MIME-Version: 1.0",
        "Content-Length: 113",
        body=b"--unique-boundary-1\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n"
             b"--unique-boundary-1\r\nContent-Type: text/plain\r\n\r\nhi\r\n--unique-boundary-1--\r\n")),
    ("utf-8 in display name and header values", options(
        "Subject: caf\u00e9 \u2603", "Contact: \"\u00c5sa\" <sip:asa@192.0.2.10>")),
    ("leading CRLFs before the start line (RFC 3261 §7.5)", b"\r\n\r\n" + options()),
    ("Max-Forwards 0 on OPTIONS is answered by the UAS", options(
        start="OPTIONS sip:bob@voipbin.test SIP/2.0").replace(b"Max-Forwards: 70", b"Max-Forwards: 0")),
    ("no Max-Forwards at all (tolerated)", options(drop=("Max-Forwards",))),
    ("escaped NUL in the user part", options(start="OPTIONS sip:null-%00-null@voipbin.test SIP/2.0")),
]

VALID_RESPONSES: list[tuple[str, bytes]] = [
    ("response with an empty reason phrase", msg(
        "SIP/2.0 100 ", *BASE, "CSeq: 1 OPTIONS", "Content-Length: 0")),
    ("response with a UTF-8 reason phrase", msg(
        "SIP/2.0 200 \u6210\u529f", *BASE, "CSeq: 1 OPTIONS", "Content-Length: 0")),
]

REPLY: list[tuple[str, bytes, int, str]] = [
    ("no Call-ID", options(drop=("Call-ID",)), 400, "Missing Call-ID"),
    ("no From", options(drop=("From",)), 400, "Missing From"),
    ("no To", options(drop=("To",)), 400, "Missing To"),
    ("no CSeq", options(drop=("CSeq",)), 400, "Missing CSeq"),
    ("two Call-IDs", options("Call-ID: other@x"), 400, "Multiple Call-ID Headers"),
    ("non-numeric CSeq", options(cseq="abc OPTIONS"), 400, "Bad CSeq"),
    ("CSeq beyond 2**31", options(cseq="2147483648 OPTIONS"), 400, "Bad CSeq"),
    ("CSeq method differs from the request method", options(cseq="1 INVITE"), 400,
     "CSeq Method Mismatch"),
    ("Content-Length larger than the body", options().replace(
        b"Content-Length: 0", b"Content-Length: 9999"), 400, "Content-Length Mismatch"),
    ("negative Content-Length", options().replace(b"Content-Length: 0", b"Content-Length: -5"),
     400, "Bad Content-Length"),
    ("Max-Forwards out of range", options().replace(b"Max-Forwards: 70", b"Max-Forwards: 300000000000"),
     400, "Bad Max-Forwards"),
    ("unterminated < in From", options().replace(
        b"From: <sip:alice@voipbin.test>;tag=a1", b"From: <sip:alice@voipbin.test;tag=a1"),
     400, "Bad From Header"),
    ("unbalanced quote in To", options().replace(
        b"To: <sip:bob@voipbin.test>", b'To: "Bob <sip:bob@voipbin.test>'), 400, "Bad To Header"),
    ("unknown SIP version", options(start="OPTIONS sip:bob@voipbin.test SIP/7.0"), 505,
     "Version Not Supported"),
    ("unknown Request-URI scheme", options(start="OPTIONS nobodyknows:thisscheme SIP/2.0"), 416,
     "Unsupported URI Scheme"),
    ("unparseable Request-URI", options(start="OPTIONS sip:@@@ SIP/2.0"), 400, "Bad Request-URI"),
    ("Max-Forwards exhausted on INVITE", msg(
        "INVITE sip:bob@voipbin.test SIP/2.0", *[h.replace("70", "0") for h in BASE],
        "CSeq: 1 INVITE", "Content-Length: 0"), 483, "Too Many Hops"),
]

DROP: list[tuple[str, bytes]] = [
    ("empty datagram", b""),
    ("binary garbage", bytes(range(256))),
    ("request line without version", b"OPTIONS sip:bob@voipbin.test\r\n\r\n"),
    ("header line without a colon", options("This is not a header")),
    ("no Via: cannot be answered", options(drop=("Via",))),
    ("unparseable Via", options().replace(b"Via: SIP/2.0/UDP", b"Via: SIP/3.0/UDP")),
    ("status code out of range", msg("SIP/2.0 99 Odd", *BASE, "CSeq: 1 OPTIONS")),
    ("folding before any header", b"OPTIONS sip:b@c SIP/2.0\r\n  folded\r\n\r\n"),
    ("invalid header name characters", options("Bad Name: value")),
]
