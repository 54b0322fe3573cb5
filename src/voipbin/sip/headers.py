"""Header names and typed header values (RFC 3261 §7.3, §20, §25.1).

* :func:`canonical_name` maps compact forms (``i`` -> ``Call-ID``, §7.3.3) and any case to one spelling.
* :data:`MULTI_VALUE` lists the headers whose comma-separated values are separate header fields (§7.3.1).
* :class:`Address` (name-addr / addr-spec with params: From, To, Contact, Route), :class:`Via`,
  :class:`CSeq` parse and serialize one header value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from voipbin.sip.errors import SipParseError
from voipbin.sip.grammar import Params, format_params, parse_params, quote, split_unquoted
from voipbin.sip.uri import SipUri, parse_uri

VIA_BRANCH_COOKIE = "z9hG4bK"  # RFC 3261 §8.1.1.7

# The common shape of a Via value: ``SIP/2.0/<transport> <host>[:<port>][;params]`` with a plain host name,
# IPv4 or bracketed IPv6 address; it parses to exactly what the general path of Via.parse gives (which
# takes everything else, LWS inside sent-by included, and raises the errors).
_COMMON_VIA = re.compile(
    r"SIP/2\.0/([A-Za-z]+)[ \t]+([A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])(?::([0-9]{1,5}))?[ \t]*(;.*)?")

COMPACT_FORMS = {
    "a": "Accept-Contact", "b": "Referred-By", "c": "Content-Type", "d": "Request-Disposition",
    "e": "Content-Encoding", "f": "From", "i": "Call-ID", "j": "Reject-Contact", "k": "Supported",
    "l": "Content-Length", "m": "Contact", "o": "Event", "r": "Refer-To", "s": "Subject", "t": "To",
    "u": "Allow-Events", "v": "Via", "x": "Session-Expires", "y": "Identity",
}

_KNOWN = [
    "Accept", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow", "Allow-Events",
    "Authentication-Info", "Authorization", "Call-ID", "Call-Info", "Contact", "Content-Disposition",
    "Content-Encoding", "Content-Language", "Content-Length", "Content-Type", "CSeq", "Date",
    "Error-Info", "Event", "Expires", "From", "In-Reply-To", "Max-Forwards", "Min-Expires",
    "MIME-Version", "Organization", "Path", "Priority", "Proxy-Authenticate", "Proxy-Authorization",
    "Proxy-Require", "Record-Route", "Refer-To", "Referred-By", "Reply-To", "Require", "Retry-After",
    "Route", "RSeq", "RAck", "Server", "Service-Route", "Session-Expires", "Subject", "Supported",
    "Timestamp", "To", "Unsupported", "User-Agent", "Via", "Warning", "WWW-Authenticate",
    "Min-SE", "P-Asserted-Identity", "Identity", "Reason",
]
_CANONICAL = {name.lower(): name for name in _KNOWN}
_CANONICAL.update(COMPACT_FORMS)
KNOWN_NAMES = frozenset(_CANONICAL.values())  # canonical spellings; a known header is only ever stored so

MULTI_VALUE = frozenset(
    {
        "Accept", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow", "Allow-Events",
        "Call-Info", "Contact", "Content-Encoding", "Content-Language", "Error-Info", "In-Reply-To",
        "Path", "Proxy-Require", "Record-Route", "Require", "Route", "Service-Route", "Supported",
        "Unsupported", "Via", "Warning", "P-Asserted-Identity",
    }
)


def canonical_name(name: str) -> str:
    """Return the canonical spelling of a header name (compact forms expanded); unknown names
    are returned unchanged (they still compare case-insensitively)."""
    return _CANONICAL.get(name.lower(), name)


def lookup_key(name: str) -> tuple[str, bool]:
    """``(key, known)`` to find header ``name`` among stored ``(name, value)`` entries whose known names
    are spelled canonically: ``known`` - compare stored names with ``key`` (the canonical spelling) as
    they are; else ``key`` is the lower-case name, to compare with each stored name lower-cased."""
    canonical = _CANONICAL.get(name.lower(), name)
    if canonical in KNOWN_NAMES:
        return canonical, True
    return canonical.lower(), False


def split_values(name: str, value: str) -> list[str]:
    """Split a header field value into its comma-separated values when ``name`` allows lists.

    ``Contact: *`` stays one value. Raises :class:`SipParseError` on an unterminated quote.
    """
    if name not in MULTI_VALUE or "," not in value:
        return [value]
    return [v.strip() for v in split_unquoted(value, ",") if v.strip()]


@dataclass
class Address:
    """A name-addr or addr-spec with header params (From, To, Contact, Route; RFC 3261 §20.10).

    ``uri`` is ``None`` only for the wildcard ``Contact: *``.
    """

    uri: SipUri | None
    display_name: str | None = None
    params: Params = field(default_factory=dict)

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    @property
    def is_wildcard(self) -> bool:
        return self.uri is None

    @classmethod
    def parse(cls, text: str) -> Address:
        """Parse ``"Bob" <sip:bob@b.example>;tag=1`` or ``sip:bob@b.example;tag=1`` or ``*``.

        Raises :class:`SipParseError` ("Bad Address").
        """
        text = text.strip()
        if text == "*":
            return cls(None)
        display: str | None = None
        if "<" in text:
            if text.startswith('"'):
                end = _closing_quote(text)
                display = text[1:end].replace('\\"', '"').replace("\\\\", "\\")
                rest = text[end + 1 :].lstrip()
                if not rest.startswith("<"):
                    raise SipParseError("Bad Address")
            else:
                lt = text.index("<")
                display = text[:lt].strip() or None
                rest = text[lt:]
            gt = rest.find(">")
            if gt < 0:
                raise SipParseError("Bad Address")
            uri = parse_uri(rest[1:gt])
            params = parse_params(rest[gt + 1 :])
        else:
            uri_text, _, params_text = text.partition(";")
            if not uri_text or " " in uri_text.strip():
                raise SipParseError("Bad Address")
            uri = parse_uri(uri_text)
            params = parse_params(params_text)
        return cls(uri, display, params)

    def __str__(self) -> str:
        if self.uri is None:
            return "*"
        name = ""
        if self.display_name:
            name = quote(self.display_name) + " "
        return f"{name}<{self.uri}>{format_params(self.params)}"


def _closing_quote(text: str) -> int:
    i = 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == '"':
            return i
        i += 1
    raise SipParseError("Bad Address")


@dataclass
class Via:
    """One Via header value (RFC 3261 §20.42, §18.2.1, RFC 3581 ``rport``/``received``)."""

    transport: str
    host: str
    port: int | None = None
    params: Params = field(default_factory=dict)

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def sent_by(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    @classmethod
    def parse(cls, text: str) -> Via:
        """Parse ``SIP/2.0/UDP host:port;branch=z9hG4bK...;rport``; LWS around ``/`` allowed.

        Raises :class:`SipParseError` ("Bad Via").
        """
        common = _COMMON_VIA.fullmatch(text.strip())
        if common is not None:
            transport, host, port_text, params_text = common.groups()
            port = int(port_text) if port_text is not None else None
            if port is None or 0 < port < 65536:
                return cls(transport.upper(), host, port, parse_params(params_text) if params_text else {})
        return cls._parse_general(text)

    @classmethod
    def _parse_general(cls, text: str) -> Via:
        """:meth:`parse` for any shape."""
        proto, sep, rest = text.partition("/")
        if not sep or proto.strip().upper() != "SIP":
            raise SipParseError("Bad Via")
        version, sep, rest = rest.partition("/")
        if not sep or version.strip() != "2.0":
            raise SipParseError("Bad Via")
        rest = rest.lstrip()
        i = 0
        while i < len(rest) and not rest[i].isspace():
            i += 1
        transport = rest[:i].upper()
        rest = rest[i:].strip()
        if not transport or not rest:
            raise SipParseError("Bad Via")
        hostport, _, params_text = rest.partition(";")
        hostport = "".join(hostport.split())
        try:
            uri = parse_uri("sip:" + hostport)
        except SipParseError:
            raise SipParseError("Bad Via") from None
        if uri.user is not None or uri.params:
            raise SipParseError("Bad Via")
        return cls(transport, uri.host, uri.port, parse_params(params_text))

    def __str__(self) -> str:
        return f"SIP/2.0/{self.transport} {self.sent_by}{format_params(self.params)}"


@dataclass(frozen=True)
class CSeq:
    """``CSeq: 4711 INVITE`` (RFC 3261 §20.16): sequence number < 2**31 and method."""

    seq: int
    method: str

    @classmethod
    def parse(cls, text: str) -> CSeq:
        """Raises :class:`SipParseError` ("Bad CSeq")."""
        parts = text.split()
        if len(parts) != 2 or not (parts[0].isascii() and parts[0].isdigit()) or int(parts[0]) >= 2**31:
            raise SipParseError("Bad CSeq")
        return cls(int(parts[0]), parts[1])

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"
