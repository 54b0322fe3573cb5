"""HTTP Digest authentication for SIP (RFC 3261 §22.4, RFC 7616, RFC 8760).

* :func:`compute_response` - the ``response`` value for MD5, SHA-256, SHA-512-256 (and ``-sess``).
* nonces, ``nc`` replay tracking and the server-side checks live in :mod:`voipbin.sip.digest_auth`.
* :func:`parse_auth_header` / :func:`format_challenge` - the header grammar.
* :func:`build_authorization` - the UAC side: answer a 401/407 challenge.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass

from voipbin.sip.errors import SipParseError
from voipbin.sip.grammar import quote, split_unquoted, unquote

_HASHES = {
    "MD5": hashlib.md5,
    "SHA-256": hashlib.sha256,
    "SHA-512-256": lambda data=b"": hashlib.new("sha512_256", data),
}
ALGORITHMS = ("SHA-256", "MD5")  # offered in this order (RFC 8760 §2.4: most preferred first)


def _h(algorithm: str, text: str) -> str:
    base = algorithm.upper().removesuffix("-SESS")
    try:
        fn = _HASHES[base]
    except KeyError:
        raise SipParseError("Unsupported Digest Algorithm") from None
    return fn(text.encode("utf-8")).hexdigest()


def compute_response(
    *,
    algorithm: str,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    qop: str | None = None,
    nc: str = "00000001",
    cnonce: str = "",
) -> str:
    """The Digest ``response`` (RFC 7616 §3.4.1-§3.4.3; RFC 2617 §3.2.2.1 when ``qop`` is None).

    Raises :class:`SipParseError` for an unknown algorithm or an unsupported qop (``auth-int``).
    """
    ha1 = _h(algorithm, f"{username}:{realm}:{password}")
    if algorithm.upper().endswith("-SESS"):
        ha1 = _h(algorithm, f"{ha1}:{nonce}:{cnonce}")
    if qop not in (None, "auth"):
        raise SipParseError("Unsupported qop")
    ha2 = _h(algorithm, f"{method}:{uri}")
    if qop is None:
        return _h(algorithm, f"{ha1}:{nonce}:{ha2}")
    return _h(algorithm, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


def parse_auth_header(value: str) -> tuple[str, dict[str, str]]:
    """Parse ``Digest realm="r", nonce="n", ...`` into ("Digest", {"realm": "r", ...}).

    Param names are lower-cased, values unquoted. Raises :class:`SipParseError` ("Bad Authorization").
    """
    value = value.strip()
    scheme, _, rest = value.partition(" ")
    if not scheme:
        raise SipParseError("Bad Authorization")
    params = _common_auth_params(rest)
    return scheme, params if params is not None else _auth_params(rest)


def _auth_params(rest: str) -> dict[str, str]:
    """The comma-separated ``name=value`` params of an auth header value (after the scheme), any shape."""
    params: dict[str, str] = {}
    for piece in split_unquoted(rest, ","):
        piece = piece.strip()
        if not piece:
            continue
        name, eq, val = piece.partition("=")
        if not eq:
            raise SipParseError("Bad Authorization")
        params[name.strip().lower()] = unquote(val.strip())
    return params


# One ``name=value`` of the common shape: a token name, then a quoted-string without escapes or angle
# brackets, or a bare value without LWS, quotes, commas, brackets or "="; then a comma or the end.
_COMMON_AUTH_PARAM = re.compile(r'[ \t]*([A-Za-z0-9_-]+)[ \t]*=[ \t]*(?:"([^"\\<>]*)"|([^\s",<>=\\]*))[ \t]*(?:,|\Z)')


def _common_auth_params(rest: str) -> dict[str, str] | None:
    """The params of ``rest`` when every one has the common shape (then exactly what :func:`_auth_params`
    gives), else None."""
    params: dict[str, str] = {}
    pos, end = 0, len(rest)
    while pos < end:
        match = _COMMON_AUTH_PARAM.match(rest, pos)
        if match is None:
            return None
        name, quoted, bare = match.groups()
        params[name.lower()] = quoted if quoted is not None else bare
        pos = match.end()
    return params


def format_challenge(realm: str, nonce: str, algorithm: str, stale: bool = False, opaque: str | None = None) -> str:
    """A ``WWW-Authenticate`` value with qop="auth" (RFC 7616 §3.3)."""
    out = f'Digest realm={quote(realm)}, nonce={quote(nonce)}, algorithm={algorithm}, qop="auth"'
    if opaque is not None:
        out += f", opaque={quote(opaque)}"
    if stale:
        out += ", stale=true"
    return out


@dataclass
class Credentials:
    """The parsed ``Authorization`` fields a server checks."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str = "MD5"
    qop: str | None = None
    nc: str = ""
    cnonce: str = ""
    opaque: str | None = None

    @classmethod
    def from_header(cls, value: str) -> Credentials:
        """Raises :class:`SipParseError` ("Bad Authorization") when a required field is missing."""
        scheme, p = parse_auth_header(value)
        if scheme.lower() != "digest":
            raise SipParseError("Unsupported Authorization Scheme")
        try:
            return cls(p["username"], p["realm"], p["nonce"], p["uri"], p["response"],
                       p.get("algorithm", "MD5"), p.get("qop"), p.get("nc", ""), p.get("cnonce", ""),
                       p.get("opaque"))
        except KeyError:
            raise SipParseError("Bad Authorization") from None

    def matches(self, password: str, method: str) -> bool:
        """True when ``response`` is right for ``password`` (constant-time compare)."""
        try:
            expected = compute_response(algorithm=self.algorithm, username=self.username,
                                        realm=self.realm, password=password, method=method,
                                        uri=self.uri, nonce=self.nonce, qop=self.qop, nc=self.nc,
                                        cnonce=self.cnonce)
        except SipParseError:
            return False
        return hmac.compare_digest(expected, self.response.lower())


def build_authorization(challenge: str, *, method: str, uri: str, username: str, password: str,
                        nc: int = 1, cnonce: str | None = None) -> str:
    """Answer one ``WWW-Authenticate``/``Proxy-Authenticate`` challenge (UAC side, RFC 3261 §22.2).

    Returns the ``Authorization`` value. Raises :class:`SipParseError` for an unsupported challenge.
    """
    scheme, p = parse_auth_header(challenge)
    if scheme.lower() != "digest":
        raise SipParseError("Unsupported Authorization Scheme")
    realm, nonce = p.get("realm", ""), p.get("nonce", "")
    algorithm = p.get("algorithm", "MD5")
    qops = [q.strip() for q in p.get("qop", "").split(",") if q.strip()]
    qop = "auth" if "auth" in qops else None
    if qops and qop is None:
        raise SipParseError("Unsupported qop")
    cnonce = cnonce or os.urandom(8).hex()
    nc_text = f"{nc:08x}"
    response = compute_response(algorithm=algorithm, username=username, realm=realm,
                                password=password, method=method, uri=uri, nonce=nonce, qop=qop,
                                nc=nc_text, cnonce=cnonce)
    out = (f"Digest username={quote(username)}, realm={quote(realm)}, nonce={quote(nonce)}, "
           f"uri={quote(uri)}, response={quote(response)}, algorithm={algorithm}")
    if qop:
        out += f", qop={qop}, nc={nc_text}, cnonce={quote(cnonce)}"
    if "opaque" in p:
        out += f", opaque={quote(p['opaque'])}"
    return out


def pick_challenge(challenges: list[str]) -> str:
    """The strongest supported challenge among several (RFC 8760 §2.4). Raises SipParseError."""
    ranked: list[tuple[int, int, str]] = []
    for i, c in enumerate(challenges):
        try:
            scheme, p = parse_auth_header(c)
        except SipParseError:
            continue
        alg = p.get("algorithm", "MD5").upper().removesuffix("-SESS")
        if scheme.lower() == "digest" and alg in _HASHES:
            ranked.append((list(_HASHES).index(alg), -i, c))
    if not ranked:
        raise SipParseError("No Supported Challenge")
    return max(ranked)[2]
