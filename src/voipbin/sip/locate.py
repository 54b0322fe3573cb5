"""Locating the server of a ``sip:`` URI (RFC 3263 §4) and the address policy for where we may send.

:class:`Locator` turns a Request-URI into the (IP, port, transport) to send to:

* the transport is the URI's ``transport`` param (``udp``/``tcp``), else UDP (§4.1);
* an IP literal is used as is (port: the URI's, else 5060);
* a hostname with a port: its A records (§4.2);
* a hostname without a port: its ``_sip._udp`` / ``_sip._tcp`` SRV records by priority, then weight
  (RFC 2782), each target's A records; without SRV records, the host's A records on 5060 (§4.2).

Every lookup together is bounded by ``timeout_s``. Names under ``.invalid`` (RFC 6761 §6.4) fail
without a query. Unless ``allow_private``, an address that is not globally routable (loopback,
RFC 1918/ULA private, link-local, shared, reserved, unspecified, multicast; see :func:`non_global`)
is refused - whether written in the URI or returned by DNS (no rebinding to 127.0.0.1).
Errors are :class:`OSError` subclasses: :class:`Unresolvable`, :class:`DestinationRefused`.
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.resolver
import dns.rdatatype

from voipbin.sip.errors import SipParseError
from voipbin.sip.uri import DEFAULT_SIP_PORT, SipUri, parse_uri

DEFAULT_TIMEOUT_S = 4.0
SPECIAL_USE_SUFFIXES = (".invalid",)


class LocateError(OSError):
    """The URI cannot be reached."""


class Unresolvable(LocateError):
    """No address for the URI's host (no such name, no answer within the timeout)."""


class DestinationRefused(LocateError):
    """The URI's host is, or resolves to, an address the policy refuses."""


@dataclass(frozen=True)
class Located:
    """Where to send: ``host`` (an IP address), ``port``, ``transport`` ("UDP" | "TCP")."""

    host: str
    port: int
    transport: str


def non_global(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True for an address that is not globally routable (an IPv4-mapped IPv6 address by its IPv4)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def literal_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address a URI host spells (``[v6]`` brackets allowed), else None for a hostname."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def check_uri(uri: str | SipUri, *, allow_private: bool) -> SipUri:
    """Parse ``uri`` and apply the policy to a literal IP host (hostnames are checked when resolved).

    Raises :class:`SipParseError` for a URI that is not sip:/sips:, :class:`DestinationRefused`.
    """
    parsed = parse_uri(uri) if isinstance(uri, str) else uri
    if not parsed.is_sip or not parsed.host:
        raise SipParseError("Bad URI")
    ip = literal_ip(parsed.host)
    if ip is not None and not allow_private and non_global(ip):
        raise DestinationRefused(f"{parsed.host} is not a public address")
    return parsed


class Locator:
    """RFC 3263 server location with dnspython's asyncio resolver (see the module docstring)."""

    def __init__(self, *, allow_private: bool = False, timeout_s: float = DEFAULT_TIMEOUT_S,
                 resolver: dns.asyncresolver.Resolver | None = None) -> None:
        self.allow_private = allow_private
        self.timeout_s = timeout_s
        self._resolver = resolver

    def _get_resolver(self) -> dns.asyncresolver.Resolver:
        if self._resolver is None:
            try:
                self._resolver = dns.asyncresolver.Resolver()
            except dns.resolver.NoResolverConfiguration:  # no /etc/resolv.conf: nothing resolves
                self._resolver = dns.asyncresolver.Resolver(configure=False)
        return self._resolver

    async def locate(self, uri: str | SipUri, *, allow_private: bool | None = None) -> Located:
        """The first address to try for ``uri``. Raises :class:`Unresolvable`, :class:`DestinationRefused`
        or :class:`SipParseError` (not a sip:/sips: URI)."""
        allow = self.allow_private if allow_private is None else allow_private
        parsed = check_uri(uri, allow_private=allow)
        transport = "TCP" if (parsed.params.get("transport") or "").lower() == "tcp" else "UDP"
        if literal_ip(parsed.host) is not None:
            return Located(parsed.host.strip("[]"), parsed.effective_port, transport)
        host = parsed.host.lower().rstrip(".")
        if host.endswith(SPECIAL_USE_SUFFIXES) or not host:
            raise Unresolvable(f"{parsed.host} does not resolve (RFC 6761 special-use name)")
        try:
            async with asyncio.timeout(self.timeout_s):
                candidates = await self._candidates(host, parsed.port, transport)
        except TimeoutError:
            raise Unresolvable(f"{parsed.host}: no DNS answer within {self.timeout_s:g} s") from None
        if not candidates:
            raise Unresolvable(f"{parsed.host} has no SRV or A records")
        for ip, _port in candidates:
            if not allow and non_global(ipaddress.ip_address(ip)):
                raise DestinationRefused(f"{parsed.host} resolves to {ip}, not a public address")
        ip, port = candidates[0]
        return Located(ip, port, transport)

    async def _candidates(self, host: str, port: int | None, transport: str) -> list[tuple[str, int]]:
        if port is not None:
            return [(ip, port) for ip in await self._addresses(host)]
        service = f"_sip._{transport.lower()}.{host}"
        try:
            answer = await self._get_resolver().resolve(service, "SRV", lifetime=self.timeout_s)
            records = sorted(answer, key=lambda r: (r.priority, -r.weight))  # type: ignore[attr-defined]
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.NoNameservers):
            records = []
        except dns.exception.Timeout:
            raise TimeoutError from None
        out: list[tuple[str, int]] = []
        for record in records:
            target = record.target.to_text().rstrip(".")  # type: ignore[attr-defined]
            if target:
                out += [(ip, int(record.port)) for ip in await self._addresses(target)]  # type: ignore[attr-defined]
        if records:
            return out
        return [(ip, DEFAULT_SIP_PORT) for ip in await self._addresses(host)]

    async def _addresses(self, host: str) -> list[str]:
        try:
            answer = await self._get_resolver().resolve(host, "A", lifetime=self.timeout_s)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.NoNameservers):
            return []
        except dns.exception.Timeout:
            raise TimeoutError from None
        return [r.to_text() for r in answer]
