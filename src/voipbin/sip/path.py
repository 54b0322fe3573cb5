"""Path (RFC 3327): the proxies a REGISTER crossed, kept with the binding and used as a route set.

An edge proxy (Kamailio, ``deploy/kamailio``) that forwards a REGISTER to our registrar prepends a
``Path`` header with its own loose-routing URI; the registrar stores the values with the binding
(§5.3) and a request to that contact later carries them as ``Route`` headers (§5.3, RFC 3261
§8.1.2 pre-loaded route set), so it reaches the phone through the same proxy (which holds its NAT
pinhole and Record-Routes the dialog).

Kamailio's ``add_path_received()`` writes where the REGISTER came from into the Path URI as
``received=sip:<ip>:<port>`` (escaped); :func:`path_source` reads it back, for a proxy the registrar
trusts, so that digest nonces and failure counters see the phone's address, not the proxy's.

The same edge relays INVITEs: the sender's Via (the one below the proxy's own) then carries where the
request really came from, written by the proxy as ``received``/``rport`` (RFC 3261 §18.2.1, RFC 3581
§4; Kamailio's ``force_rport()`` replaces whatever the sender put there). :func:`via_source` reads it
back, again only for a request whose packet came from a trusted proxy: a trunk trusted by its address
stays trusted behind the edge, and nobody else can claim its address by writing a Via.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Sequence
from urllib.parse import unquote

from voipbin.sip.errors import SipParseError
from voipbin.sip.headers import Address
from voipbin.sip.message import Request
from voipbin.sip.uri import parse_uri

PATH_TAG = "path"


def path_of(request: Request) -> tuple[str, ...]:
    """The request's Path values in order (nearest proxy first), each a SIP URI in angle brackets.
    Raises SipParseError ("Bad Path") when one is not a SIP/SIPS address or lacks ``lr`` (we only
    loose-route, RFC 3327 §5.1 requires ``lr``)."""
    values = []
    for value in request.headers.get_all("Path"):
        address = Address.parse(value)
        if address.uri is None or address.uri.scheme not in ("sip", "sips") or "lr" not in address.uri.params:
            raise SipParseError("Bad Path")
        values.append(value.strip())
    return tuple(values)


def supports_path(request: Request) -> bool:
    """Whether the UA listed ``path`` in ``Supported`` or ``Require`` (§5.3: then the 200 echoes Path)."""
    return PATH_TAG in _tags(request, "Supported") | _tags(request, "Require")


def unsupported_required(request: Request, supported: Collection[str]) -> list[str]:
    """Option tags of ``Require`` that are not in ``supported`` (RFC 3261 §8.2.2.3: answer 420)."""
    return sorted(_tags(request, "Require") - set(supported))


def path_source(path: Sequence[str], source: tuple[str, int],
                trusted_proxies: Collection[str]) -> tuple[str, int]:
    """The UA's own address when the nearest Path hop is a trusted proxy that sent this request and
    recorded ``received=`` (Kamailio ``add_path_received``); else ``source`` unchanged. ``source``:
    (host, port) the request came from; ``trusted_proxies``: host addresses of the edge proxies."""
    if not path or source[0] not in trusted_proxies:
        return source
    try:
        uri = Address.parse(path[0]).uri
        received = uri.params.get("received") if uri is not None else None
        if not received:
            return source
        target = parse_uri(unquote(received))
        ipaddress.ip_address(target.host.strip("[]"))
    except (SipParseError, ValueError):
        return source
    return target.host.strip("[]"), target.effective_port


def via_source(request: Request, source: tuple[str, int], trusted_proxies: Collection[str]) -> tuple[str, int]:
    """The sender's own address when ``source`` (the packet's (host, port)) is a trusted proxy: the
    second Via's ``received`` (else its host) and ``rport`` (else its port, else 5060); else, or when
    that Via is absent, unparsable or names no IP address, ``source`` unchanged. One edge proxy is
    assumed (its own Via on top): a chain of proxies is not unwound."""
    if source[0] not in trusted_proxies:
        return source
    try:
        vias = request.vias
    except SipParseError:
        return source
    if len(vias) < 2:
        return source  # the proxy's own request (an OPTIONS probe)
    via = vias[1]
    host = (via.params.get("received") or via.host).strip("[]")
    rport = via.params.get("rport")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return source
    port = int(rport) if rport and rport.isdigit() else via.port or 5060
    return host, port


def _tags(request: Request, header: str) -> set[str]:
    return {t.strip().lower() for value in request.headers.get_all(header) for t in value.split(",") if t.strip()}
