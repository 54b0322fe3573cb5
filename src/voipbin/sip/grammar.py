"""Small lexical helpers shared by the URI and header parsers (RFC 3261 §25.1)."""

from __future__ import annotations

import re

from voipbin.sip.errors import SipParseError

Params = dict[str, str | None]


# What split_unquoted stops at: a whole quoted-string (backslash escapes, RFC 3261 §25.1), a lone quote (an
# unterminated quoted-string), an angle bracket, or the separator
_SPECIAL: dict[str, re.Pattern[str]] = {}


def split_unquoted(text: str, sep: str) -> list[str]:
    """Split ``text`` on ``sep`` outside quoted strings and ``<...>`` (RFC 3261 §7.3.1).

    Returns the pieces unstripped. Raises :class:`SipParseError` on an unterminated quote.
    """
    if '"' not in text and "<" not in text:
        return text.split(sep)
    special = _SPECIAL.get(sep)
    if special is None:
        special = _SPECIAL[sep] = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|"|[<>]|' + re.escape(sep), re.DOTALL)
    parts: list[str] = []
    start = 0
    in_angle = False
    for match in special.finditer(text):
        token = match.group()
        if token[0] == '"':
            if len(token) == 1:
                raise SipParseError("Unterminated Quoted String")
        elif token == "<":
            in_angle = True
        elif token == ">":
            in_angle = False
        elif not in_angle:
            parts.append(text[start:match.start()])
            start = match.end()
    parts.append(text[start:])
    return parts


def parse_params(text: str) -> Params:
    """Parse ``;name=value;flag`` (leading ``;`` optional) into an ordered dict.

    Names are lower-cased (they are case-insensitive); values keep their case and quotes.
    """
    params: Params = {}
    if not text:
        return params
    for piece in split_unquoted(text, ";"):
        piece = piece.strip()
        if not piece:
            continue
        name, eq, value = piece.partition("=")
        name = name.strip().lower()
        if not name:
            raise SipParseError("Bad Parameter")
        params[name] = value.strip() if eq else None
    return params


def format_params(params: Params) -> str:
    """Serialize params as ``;name=value;flag`` (empty string for no params)."""
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


def unquote(value: str) -> str:
    """Remove surrounding double quotes and backslash escapes (RFC 3261 §25.1 quoted-string)."""
    value = value.strip()
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        inner = value[1:-1]
        if "\\" not in inner:
            return inner
        out: list[str] = []
        it = iter(inner)
        for ch in it:
            out.append(next(it, "") if ch == "\\" else ch)
        return "".join(out)
    return value


def quote(value: str) -> str:
    """Return ``value`` as a quoted-string."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
