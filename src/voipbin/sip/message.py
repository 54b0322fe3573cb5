"""SIP message model and serializer (RFC 3261 §7).

:class:`Headers` is an ordered, case-insensitive multi-map of header fields in canonical names;
each comma-separated value of a list header is its own entry, so ``Via: a, b`` and two ``Via`` lines
are the same message. :class:`Request` and :class:`Response` carry the start line, headers and body;
``to_bytes()`` serializes with a correct ``Content-Length``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field

from voipbin.sip.errors import SipParseError
from voipbin.sip.grammar import parse_params
from voipbin.sip.headers import VIA_BRANCH_COOKIE, Address, CSeq, Via, canonical_name, lookup_key
from voipbin.sip.uri import SipUri

SIP_VERSION = "SIP/2.0"

REASON_PHRASES = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 200: "OK", 202: "Accepted", 300: "Multiple Choices",
    301: "Moved Permanently", 302: "Moved Temporarily", 400: "Bad Request", 401: "Unauthorized",
    403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
    407: "Proxy Authentication Required", 408: "Request Timeout", 410: "Gone",
    413: "Request Entity Too Large", 415: "Unsupported Media Type", 416: "Unsupported URI Scheme",
    420: "Bad Extension", 421: "Extension Required", 423: "Interval Too Brief",
    480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist", 482: "Loop Detected",
    483: "Too Many Hops", 484: "Address Incomplete", 486: "Busy Here", 487: "Request Terminated",
    488: "Not Acceptable Here", 491: "Request Pending", 500: "Server Internal Error",
    501: "Not Implemented", 503: "Service Unavailable", 504: "Server Time-out",
    505: "Version Not Supported", 513: "Message Too Large", 600: "Busy Everywhere", 603: "Decline",
    604: "Does Not Exist Anywhere", 606: "Not Acceptable",
}


class Headers:
    """Ordered multi-map of ``(canonical name, value)``; lookups are case-insensitive.

    Every entry of a known header (:data:`~voipbin.sip.headers.KNOWN_NAMES`, compact forms included) is
    stored under its canonical spelling, so a lookup of one compares names as they are; only unknown
    names are compared lower-cased."""

    __slots__ = ("_items",)

    def __init__(self, items: list[tuple[str, str]] | None = None) -> None:
        self._items: list[tuple[str, str]] = [(canonical_name(n), v) for n, v in items] if items else []

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: str) -> bool:
        return self.get(name) is not None  # values are strings, never None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and [(n.lower(), v) for n, v in self._items] == [
            (n.lower(), v) for n, v in other._items
        ]

    def get(self, name: str, default: str | None = None) -> str | None:
        """First value of ``name`` or ``default``."""
        key, known = _lookup_key(name)
        if known:
            for n, v in self._items:
                if n == key:
                    return v
            return default
        for n, v in self._items:
            if n.lower() == key:
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name`` in order (comma lists already split)."""
        key, known = _lookup_key(name)
        if known:
            return [v for n, v in self._items if n == key]
        return [v for n, v in self._items if n.lower() == key]

    def add(self, name: str, value: str) -> None:
        """Append a value (after the existing ones)."""
        self._items.append((_spelled(name), value))

    def prepend(self, name: str, value: str) -> None:
        """Insert a value before every other header (used for Via, RFC 3261 §16.6 step 8)."""
        self._items.insert(0, (_spelled(name), value))

    def set(self, name: str, value: str) -> None:
        """Replace every value of ``name`` with one value, keeping the first position."""
        name = canonical_name(name)
        key = name.lower()
        for i, (n, _) in enumerate(self._items):
            if n.lower() == key:
                self._items[i] = (name, value)
                self._items[i + 1 :] = [(n2, v2) for n2, v2 in self._items[i + 1 :] if n2.lower() != key]
                return
        self._items.append((name, value))

    def remove(self, name: str) -> None:
        key = canonical_name(name).lower()
        self._items = [(n, v) for n, v in self._items if n.lower() != key]

    def replace_first(self, name: str, value: str) -> None:
        """Replace the first value of ``name`` (e.g. the top Via)."""
        key = canonical_name(name).lower()
        for i, (n, _) in enumerate(self._items):
            if n.lower() == key:
                self._items[i] = (n, value)
                return
        raise KeyError(name)

    def copy(self) -> Headers:
        headers = Headers()
        headers._items = list(self._items)
        return headers


_LOOKUP_KEYS: dict[str, tuple[str, bool]] = {}  # a name as code asks for it -> lookup_key(name)


_SPELLED: dict[str, str] = {}  # a name as code adds it -> canonical_name(name)


def _spelled(name: str) -> str:
    found = _SPELLED.get(name)
    if found is None:
        found = canonical_name(name)
        if len(_SPELLED) < 4096 and len(name) <= 64:  # as _LOOKUP_KEYS
            _SPELLED[name] = found
    return found


def _lookup_key(name: str) -> tuple[str, bool]:
    found = _LOOKUP_KEYS.get(name)
    if found is None:
        found = lookup_key(name)
        if len(_LOOKUP_KEYS) < 4096 and len(name) <= 64:  # names come from code, rarely from the wire
            _LOOKUP_KEYS[name] = found
    return found


@dataclass(eq=False)
class Message:
    """Fields shared by requests and responses. ``defects`` lists framing problems the parser
    tolerated (e.g. "Content-Length Mismatch"); a request with defects is answered 400."""

    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    defects: list[str] = field(default_factory=list)

    # -- typed accessors (raise SipParseError when the header is missing or malformed) -----------
    def _required(self, name: str) -> str:
        value = self.headers.get(name)
        if value is None:
            raise SipParseError(f"Missing {name}")
        return value

    @property
    def call_id(self) -> str:
        return self._required("Call-ID").strip()

    @property
    def cseq(self) -> CSeq:
        return CSeq.parse(self._required("CSeq"))

    @property
    def from_(self) -> Address:
        return _address(self._required("From"), "From")

    @property
    def to(self) -> Address:
        return _address(self._required("To"), "To")

    @property
    def vias(self) -> list[Via]:
        return [Via.parse(v) for v in self.headers.get_all("Via")]

    @property
    def top_via(self) -> Via:
        return Via.parse(self._required("Via"))

    @property
    def contacts(self) -> list[Address]:
        return [_address(v, "Contact") for v in self.headers.get_all("Contact")]

    @property
    def content_type(self) -> str | None:
        return self.headers.get("Content-Type")

    def start_line(self) -> str:
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        """Serialize (RFC 3261 §7): CRLF line ends, ``Content-Length`` set to the body size."""
        lines = [self.start_line()]
        lines.extend(f"{n}: {v}" for n, v in self.headers if n != "Content-Length")
        lines.append(f"Content-Length: {len(self.body)}")
        head = "\r\n".join(lines) + "\r\n\r\n"
        return head.encode("utf-8", "surrogateescape") + self.body

    def __bytes__(self) -> bytes:
        return self.to_bytes()


def _address(value: str, name: str) -> Address:
    try:
        return Address.parse(value)
    except (SipParseError, ValueError):
        raise SipParseError(f"Bad {name} Header") from None


@dataclass(eq=False)
class Request(Message):
    """A SIP request: ``method``, Request-URI ``uri``."""

    method: str = "OPTIONS"
    uri: SipUri = field(default_factory=SipUri)
    version: str = SIP_VERSION

    def start_line(self) -> str:
        return f"{self.method} {self.uri} {self.version}"

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri}>"


@dataclass(eq=False)
class Response(Message):
    """A SIP response: ``status`` code and ``reason`` phrase."""

    status: int = 200
    reason: str = "OK"
    version: str = SIP_VERSION

    def start_line(self) -> str:
        return f"{self.version} {self.status} {self.reason}"

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason}>"


def new_branch() -> str:
    """A unique Via branch starting with the magic cookie (RFC 3261 §8.1.1.7)."""
    return VIA_BRANCH_COOKIE + secrets.token_hex(8)


def new_tag() -> str:
    """A From/To tag with 64 random bits (RFC 3261 §19.3)."""
    return secrets.token_hex(8)


def make_response(
    request: Request, status: int, reason: str | None = None, *, to_tag: str | None = None
) -> Response:
    """Build a response to ``request`` (RFC 3261 §8.2.6.2): Via, From, Call-ID, CSeq copied; To
    copied and, for a non-100 response without a To tag, given ``to_tag`` (or a new one)."""
    headers = Headers()
    items = headers._items  # the request's names are canonical already
    for name, value in request.headers:
        if name in ("Via", "From", "Call-ID", "CSeq"):
            items.append((name, value))
        elif name == "To":
            if status > 100 and ";tag=" not in value.replace(" ", "").lower():
                value = _with_tag(value, to_tag or new_tag())
            items.append((name, value))
    if status == 100 and "Timestamp" in request.headers:
        headers.add("Timestamp", request.headers.get("Timestamp") or "")
    return Response(headers, status=status, reason=reason or REASON_PHRASES.get(status, "Unknown"))


_UNTAGGED: dict[str, str | None] = {}  # a To value -> it re-serialized (None: not that simple) ...
_MAX_UNTAGGED = 8192  # ... for this many values (then forgotten all at once): one per AOR answered lately


def _with_tag(value: str, tag: str) -> str:
    """The To value ``value`` (which has no tag) re-serialized with ``tag``; unchanged when it cannot be
    parsed. The re-serialization without the tag is remembered per value (an AOR's To is the same in
    every REGISTER): the tag is then appended, as a new last param, to what is remembered."""
    base = _UNTAGGED.get(value)
    if base is None:
        if value in _UNTAGGED:  # a flag-only "tag" param or unparseable: the general path
            return _with_tag_parsed(value, tag)
        try:
            addr = Address.parse(value)
        except (SipParseError, ValueError):
            return value
        base = None if "tag" in addr.params else str(addr)
        if len(value) <= 256:  # longer ones are not remembered (the table stays a few MB at most)
            if len(_UNTAGGED) >= _MAX_UNTAGGED:
                _UNTAGGED.clear()
            _UNTAGGED[value] = base
        if base is None:
            return _with_tag_parsed(value, tag)
    return f"{base};tag={tag}"


def _with_tag_parsed(value: str, tag: str) -> str:
    try:
        addr = Address.parse(value)
        addr.params["tag"] = tag
        return str(addr)
    except (SipParseError, ValueError):
        return value


@dataclass
class BodyPart:
    """One part of a ``multipart/*`` body (RFC 2046 §5.1): its headers and content."""

    headers: Headers
    body: bytes

    @property
    def content_type(self) -> str | None:
        return self.headers.get("Content-Type")


def parse_multipart(body: bytes, content_type: str) -> list[BodyPart]:
    """Split a multipart body on the boundary given in ``content_type`` (RFC 3261 §7.4, RFC 2046).

    Raises :class:`SipParseError` ("Bad Multipart Body") when the boundary is missing or never found.
    """
    mime, _, params_text = content_type.partition(";")
    params = parse_params(params_text)
    boundary = (params.get("boundary") or "").strip('"')
    if not mime.strip().lower().startswith("multipart/") or not boundary:
        raise SipParseError("Bad Multipart Body")
    delimiter = b"--" + boundary.encode()
    chunks = body.split(delimiter)
    if len(chunks) < 3:
        raise SipParseError("Bad Multipart Body")
    parts: list[BodyPart] = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk[2:] if chunk.startswith(b"\r\n") else chunk.lstrip(b"\n")
        if chunk.endswith(b"\r\n"):
            chunk = chunk[:-2]
        head, sep, content = chunk.partition(b"\r\n\r\n")
        if not sep:
            head, content = b"", chunk.removeprefix(b"\r\n")
        headers = Headers()
        for line in head.decode("utf-8", "surrogateescape").split("\r\n"):
            if ":" in line:
                name, _, value = line.partition(":")
                headers.add(name.strip(), value.strip())
        parts.append(BodyPart(headers, content))
    return parts
