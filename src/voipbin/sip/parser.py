"""SIP message parser (RFC 3261 §7, §25) and TCP stream framer (§18.3).

* :func:`parse_message` turns one datagram (or one framed stream message) into a
  :class:`~voipbin.sip.message.Request` or :class:`~voipbin.sip.message.Response`. It unfolds
  continuation lines, expands compact header names, splits comma-separated list headers, and tolerates
  bare-LF line ends. Unrecoverable syntax raises :class:`SipParseError` (the transport drops the
  datagram); recoverable framing problems are recorded in ``message.defects``.
* :func:`validate_request` finds the reason a parseable request must be refused (400 "Missing Call-ID",
  505, 416, 483) before it reaches the transaction layer.
* :class:`StreamParser` frames messages on a byte stream by ``Content-Length``.
"""

from __future__ import annotations

import re

from voipbin.sip.errors import SipParseError
from voipbin.sip.headers import MULTI_VALUE, Address, CSeq, canonical_name, split_values
from voipbin.sip.message import SIP_VERSION, Headers, Message, Request, Response
from voipbin.sip.uri import SIP_SCHEMES, SipUri, parse_uri

_TOKEN_RE = re.compile(r"^[A-Za-z0-9\-.!%*_+`'~]+$")
_CONTENT_LENGTH_RE = re.compile(rb"(?im)^(?:content-length|l)[ \t]*:[ \t]*(\S*)[ \t]*\r?$")
_MANDATORY = ("Call-ID", "From", "To", "CSeq")
_CHECKED = frozenset((*_MANDATORY, "Max-Forwards"))
# From/To values seen to parse (a phone's To, and its From while a registration lasts, repeat): checked once
_GOOD_ADDRESSES: set[str] = set()
_MAX_GOOD_ADDRESSES = 8192  # then forgotten all at once
_MAX_REMEMBERED_CHARS = 256  # longer values and names are not remembered (the tables stay a few MB at most)


def _split_head(data: bytes) -> tuple[bytes, bytes]:
    """Return (head, rest) split at the empty line; head excludes the blank line."""
    crlf = data.find(b"\r\n\r\n")
    lf = data.find(b"\n\n")
    if crlf >= 0 and (lf < 0 or crlf < lf):
        return data[:crlf], data[crlf + 4 :]
    if lf >= 0:
        return data[:lf], data[lf + 2 :]
    return data, b""


def parse_message(data: bytes) -> Message:
    """Parse one SIP message from ``data``.

    Returns a Request or Response. Raises :class:`SipParseError` when the start line or a header
    line cannot be parsed. A body shorter than ``Content-Length`` or an invalid ``Content-Length``
    is recorded as a defect (RFC 3261 §18.3); extra bytes after the body are ignored. Header bytes that are
    not UTF-8 (RFC 3261 §7.3.1) are kept (``surrogateescape``) and, in a request, recorded as the defect
    "Invalid UTF-8" (answered 400 before any handler reads them).
    """
    if data[:1] in (b"\r", b"\n"):
        data = data.lstrip(b"\r\n")
    if not data:
        raise SipParseError("Empty Message")
    head_bytes, rest = _split_head(data)
    try:
        head = head_bytes.decode("utf-8")
        invalid_utf8 = False
    except UnicodeDecodeError:  # kept byte for byte (surrogateescape); a request is refused (400)
        head = head_bytes.decode("utf-8", "surrogateescape")
        invalid_utf8 = True
    if "\r" in head:
        head = head.replace("\r\n", "\n")
    lines = head.split("\n")
    start = lines[0]
    headers = Headers()
    items = headers._items
    last_name: str | None = None
    last_value = ""
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t":  # folded continuation (RFC 3261 §7.3.1)
            if last_name is None:
                raise SipParseError("Bad Header Folding")
            last_value = f"{last_value} {line.strip()}" if last_value else line.strip()
            continue
        if last_name is not None:
            _append(items, last_name, last_value)
        name, colon, value = line.partition(":")
        canonical = _NAMES.get(name) if colon else None
        if canonical is None:
            canonical = _header_name(name, colon)
        last_name = canonical
        last_value = value.strip(" \t")
    if last_name is not None:
        _append(items, last_name, last_value)

    defects: list[str] = []
    body = rest
    cl_values = headers.get_all("Content-Length")
    if cl_values:
        cl = cl_values[0].strip()
        if not cl.isdigit() or len(cl_values) > 1 and len(set(cl_values)) > 1:
            defects.append("Bad Content-Length")
        else:
            length = int(cl)
            if len(rest) < length:
                defects.append("Content-Length Mismatch")
            else:
                body = rest[:length]
    message = _start_line(start, headers)
    if invalid_utf8 and isinstance(message, Request):
        defects.insert(0, "Invalid UTF-8")
    message.body = body
    message.defects = defects
    return message


_NAMES: dict[str, str] = {}  # a header name as received (before the colon) -> its canonical spelling
_MAX_NAMES = 4096  # remembered spellings (names on the wire are the sender's choice: a bound, not an LRU)


def _header_name(name: str, colon: str) -> str:
    """The canonical name of the header line part ``name`` before ``colon`` (empty: there was none).
    Raises SipParseError ("Bad Header Line") for a missing colon or a name that is not a token."""
    stripped = name.rstrip(" \t")
    if not colon or not stripped or not _TOKEN_RE.match(stripped):
        raise SipParseError("Bad Header Line")
    canonical = canonical_name(stripped)
    if len(_NAMES) < _MAX_NAMES and len(name) <= 64:
        _NAMES[name] = canonical
    return canonical


def _append(items: list[tuple[str, str]], name: str, value: str) -> None:
    """Add header ``name``'s field ``value``, one entry per value of a comma-separated list header."""
    if name in MULTI_VALUE and "," in value:
        items.extend((name, v) for v in split_values(name, value))
    else:
        items.append((name, value))


def _start_line(start: str, headers: Headers) -> Message:
    if start.startswith("SIP/"):
        parts = start.split(" ", 2)
        if len(parts) < 2 or len(parts[1]) != 3 or not parts[1].isdigit():
            raise SipParseError("Bad Status Line")
        status = int(parts[1])
        if not 100 <= status <= 699:
            raise SipParseError("Bad Status Code")
        return Response(headers, status=status, reason=parts[2] if len(parts) > 2 else "",
                        version=parts[0])
    parts = start.split()
    if len(parts) != 3 or not _TOKEN_RE.match(parts[0]) or not parts[2].upper().startswith("SIP/"):
        raise SipParseError("Bad Request Line")
    method, uri_text, version = parts
    try:
        uri = parse_uri(uri_text)
    except SipParseError:
        uri = SipUri(scheme="invalid", opaque=uri_text)
    return Request(headers, method=method, uri=uri, version=version.upper())


def validate_request(request: Request) -> tuple[int, str] | None:
    """Return ``(status, reason)`` when ``request`` must be refused before any processing, else None.

    Checks (RFC 3261 §8.2, §16.3, §18.3): framing defects -> 400; SIP version -> 505; mandatory
    Call-ID/From/To/CSeq present and well formed -> 400 "Missing X" / "Bad X Header";
    CSeq method equal to the request method -> 400 "CSeq Method Mismatch"; Max-Forwards numeric ->
    400, zero -> 483; Request-URI scheme -> 416. Via is checked by the caller (no Via: no answer).
    """
    if request.defects:
        return 400, request.defects[0]
    if request.version != SIP_VERSION:
        return 505, "Version Not Supported"
    found: dict[str, list[str]] = {}  # one pass over the headers (known names are stored canonically)
    for n, v in request.headers:
        if n in _CHECKED:
            found.setdefault(n, []).append(v)
    for name in _MANDATORY:
        values = found.get(name)
        if not values or not values[0].strip():
            return 400, f"Missing {name}"
        if len(values) > 1:
            return 400, f"Multiple {name} Headers"
    try:
        for name in ("From", "To"):  # parse both: a malformed one is a 400 naming it
            value = found[name][0]
            if value in _GOOD_ADDRESSES:
                continue
            try:
                Address.parse(value)
            except (SipParseError, ValueError):
                raise SipParseError(f"Bad {name} Header") from None
            if len(value) <= _MAX_REMEMBERED_CHARS:
                if len(_GOOD_ADDRESSES) >= _MAX_GOOD_ADDRESSES:
                    _GOOD_ADDRESSES.clear()
                _GOOD_ADDRESSES.add(value)
        cseq = CSeq.parse(found["CSeq"][0])
    except SipParseError as exc:
        return 400, exc.reason
    if cseq.method != request.method:
        return 400, "CSeq Method Mismatch"
    max_forwards = found.get("Max-Forwards")
    if max_forwards is not None:
        mf = max_forwards[0].strip()
        if not mf.isdigit() or int(mf) > 255:
            return 400, "Bad Max-Forwards"
        if int(mf) == 0 and request.method != "OPTIONS":
            return 483, "Too Many Hops"
    if request.uri.scheme == "invalid":
        return 400, "Bad Request-URI"
    if request.uri.scheme not in SIP_SCHEMES:
        return 416, "Unsupported URI Scheme"
    return None


class StreamParser:
    """Frames SIP messages on a byte stream (TCP) by ``Content-Length`` (RFC 3261 §18.3).

    ``feed(data)`` returns the complete messages now available, in order. CRLF keep-alives between
    messages are skipped (RFC 5626 §3.5.1). Raises :class:`SipParseError` when the stream cannot be
    resynchronised (bad Content-Length, header section or body beyond ``max_message_bytes``); the
    connection must then be closed. ``last_head`` holds the offending header bytes for a 513 reply.
    """

    def __init__(self, max_message_bytes: int = 65535) -> None:
        self.max_message_bytes = max_message_bytes
        self._buf = bytearray()
        self.last_head: bytes = b""

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data``; return the raw bytes of each complete message (parse with
        :func:`parse_message`)."""
        self._buf += data
        out: list[bytes] = []
        while True:
            while self._buf[:2] == b"\r\n" or self._buf[:1] == b"\n":
                del self._buf[: 2 if self._buf[:1] == b"\r" else 1]
            if not self._buf:
                break
            end = self._buf.find(b"\r\n\r\n")
            sep = 4
            if end < 0:
                end = self._buf.find(b"\n\n")
                sep = 2
            if end < 0:
                if len(self._buf) > self.max_message_bytes:
                    self.last_head = bytes(self._buf[:4096])
                    raise SipParseError("Message Too Large")
                break
            head = bytes(self._buf[:end])
            match = _CONTENT_LENGTH_RE.search(head)
            length = 0
            if match:
                value = match.group(1)
                if not value.isdigit():
                    raise SipParseError("Bad Content-Length")
                length = int(value)
            total = end + sep + length
            if total > self.max_message_bytes:
                self.last_head = head
                raise SipParseError("Message Too Large")
            if len(self._buf) < total:
                break
            out.append(bytes(self._buf[:total]))
            del self._buf[:total]
        return out
