"""SIP URIs (RFC 3261 §19.1, §25.1).

``parse_uri("sip:alice:pw@example.com:5070;transport=tcp?Subject=hi")`` returns a :class:`SipUri`;
``str(uri)`` serializes it back. URIs of other schemes (``tel:``, ``http:``) keep their text in
``opaque``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from voipbin.sip.errors import SipParseError
from voipbin.sip.grammar import Params, format_params, parse_params

SIP_SCHEMES = ("sip", "sips")
DEFAULT_SIP_PORT = 5060
DEFAULT_SIPS_PORT = 5061

# The common shape of a SIP URI: ``sip[s]:[user[:password]@]host[:port][;params][?headers]`` with a plain
# host name, IPv4 or bracketed IPv6 address and nothing unusual. It parses to exactly what the general
# parser below gives; anything else (escapes in odd places, an ``@`` in a param, a bad port) takes the
# general path, which also raises the errors.
_COMMON_SIP_URI = re.compile(
    r"([Ss][Ii][Pp][Ss]?):"
    r"(?:([^:@;?\s<>\"]+)(?::([^@;?]*))?@)?"
    r"([A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])"
    r"(?::([0-9]{1,5}))?"
    r"(;[^?@]*)?"
    r"(?:\?(.*))?")


@dataclass
class SipUri:
    """A parsed URI. ``port`` is ``None`` when absent; ``params`` keys are lower-case."""

    scheme: str = "sip"
    user: str | None = None
    password: str | None = None
    host: str = ""
    port: int | None = None
    params: Params = field(default_factory=dict)
    headers: str | None = None
    opaque: str | None = None

    @property
    def is_sip(self) -> bool:
        return self.scheme in SIP_SCHEMES

    @property
    def host_port(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    @property
    def effective_port(self) -> int:
        if self.port is not None:
            return self.port
        return DEFAULT_SIPS_PORT if self.scheme == "sips" else DEFAULT_SIP_PORT

    def aor(self) -> str:
        """The address-of-record form ``sip:user@host`` (RFC 3261 §10.3 step 5): no port,
        params or headers, scheme and host lower-cased."""
        user = f"{self.user}@" if self.user is not None else ""
        return f"{self.scheme}:{user}{self.host.lower()}"

    def __str__(self) -> str:
        if self.opaque is not None:
            return f"{self.scheme}:{self.opaque}"
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(self.user)
            if self.password is not None:
                out.append(":" + self.password)
            out.append("@")
        out.append(self.host_port)
        out.append(format_params(self.params))
        if self.headers is not None:
            out.append("?" + self.headers)
        return "".join(out)


def parse_uri(text: str) -> SipUri:
    """Parse a SIP, SIPS or other absolute URI.

    Raises :class:`SipParseError` ("Bad URI") for a missing scheme, empty host or bad port.
    """
    text = text.strip()
    common = _COMMON_SIP_URI.fullmatch(text)
    if common is not None:
        scheme, user, password, host, port_text, params_text, headers = common.groups()
        port = int(port_text) if port_text is not None else None
        if port is None or 0 < port < 65536:
            return SipUri(scheme.lower(), user, password, host, port,
                          parse_params(params_text) if params_text else {}, headers)
    return _parse_uri_general(text)


def _parse_uri_general(text: str) -> SipUri:
    """:func:`parse_uri` for any shape (``text`` stripped)."""
    scheme, colon, rest = text.partition(":")
    scheme = scheme.lower()
    if not colon or not scheme or not scheme.replace("+", "").replace("-", "").replace(".", "").isalnum():
        raise SipParseError("Bad URI")
    if scheme not in SIP_SCHEMES:
        if not rest:
            raise SipParseError("Bad URI")
        return SipUri(scheme=scheme, opaque=rest)
    headers = None
    if "?" in rest:
        rest, _, headers = rest.partition("?")
    user = password = None
    if "@" in rest:
        userinfo, _, rest = rest.rpartition("@")
        user, pcolon, pw = userinfo.partition(":")
        if pcolon:
            password = pw
        if not user or any(c in user for c in " \t<>\""):
            raise SipParseError("Bad URI User")
    hostport, _, params_text = rest.partition(";")
    host, port = _split_hostport(hostport)
    return SipUri(scheme, user, password, host, port, parse_params(params_text), headers)


def _split_hostport(hostport: str) -> tuple[str, int | None]:
    port: int | None = None
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise SipParseError("Bad URI Host")
        host = hostport[: end + 1]
        tail = hostport[end + 1 :]
        if tail:
            if not tail.startswith(":"):
                raise SipParseError("Bad URI Host")
            port = _port(tail[1:])
    else:
        host, colon, port_text = hostport.partition(":")
        if colon:
            port = _port(port_text)
    if not host or not host.isascii() or not host.isprintable() or any(c in host for c in " \t<>\"@,;/?"):
        raise SipParseError("Bad URI Host")  # hostnames are ASCII (RFC 3261 §25.1; IDNs as punycode)
    return host, port


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise SipParseError("Bad URI Port")
    return int(text)
