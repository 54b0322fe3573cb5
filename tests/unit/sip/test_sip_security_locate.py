"""Where the server may send INVITEs (issue 13 finding 8): RFC 3263 location of sip: URIs against a
DNS server on loopback (SRV then A), the private-address policy (literal and resolved, no rebinding),
names that do not resolve failing within the timeout, the 400 at validation, and a well-formed From."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import dns.asyncresolver
import dns.message
import dns.rcode
import dns.rrset
import pytest

from tests_support.net import free_port
from voipbin.flows.addresses import destinations
from voipbin.calls.sip_leg import well_formed_from
from voipbin.common.errors import InvalidArgument
from voipbin.sip.locate import DestinationRefused, Located, Locator, Unresolvable

ZONE = {
    ("_sip._udp.srv.example.com.", "SRV"): ["20 0 5080 backup.example.com.", "10 0 5070 edge.example.com."],
    ("edge.example.com.", "A"): ["93.184.216.34"],
    ("backup.example.com.", "A"): ["93.184.216.35"],
    ("plain.example.com.", "A"): ["151.101.1.5"],
    ("rebind.example.com.", "A"): ["127.0.0.1"],
}


class FakeDns(asyncio.DatagramProtocol):
    """A DNS server answering from ZONE (NXDOMAIN otherwise)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        question = query.question[0]
        key = (question.name.to_text(), dns.rdatatype.to_text(question.rdtype))
        if key in ZONE:
            response.answer.append(dns.rrset.from_text_list(question.name, 60, "IN", key[1], ZONE[key]))
        elif not any(name == key[0] for name, _ in ZONE):
            response.set_rcode(dns.rcode.NXDOMAIN)
        self.transport.sendto(response.to_wire(), addr)  # type: ignore[attr-defined]


@pytest.fixture
async def resolver() -> AsyncIterator[dns.asyncresolver.Resolver]:
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(FakeDns, local_addr=("127.0.0.1", 0))
    r = dns.asyncresolver.Resolver(configure=False)
    r.nameservers = ["127.0.0.1"]
    r.port = transport.get_extra_info("sockname")[1]
    yield r
    transport.close()


async def test_srv_records_by_priority_then_a(resolver: dns.asyncresolver.Resolver) -> None:
    locator = Locator(resolver=resolver)
    assert await locator.locate("sip:bob@srv.example.com") == Located("93.184.216.34", 5070, "UDP")
    assert await locator.locate("sip:bob@plain.example.com") == Located("151.101.1.5", 5060, "UDP")
    assert await locator.locate("sip:bob@plain.example.com:5099;transport=tcp") == Located("151.101.1.5", 5099, "TCP")


async def test_private_addresses_are_refused_literal_or_resolved(resolver: dns.asyncresolver.Resolver) -> None:
    locator = Locator(resolver=resolver)
    for uri in ("sip:x@127.0.0.1:42105", "sip:x@10.0.0.8", "sip:x@169.254.169.254", "sip:x@[::1]",
                "sip:x@rebind.example.com"):
        with pytest.raises(DestinationRefused):
            await locator.locate(uri)
    allowed = Locator(resolver=resolver, allow_private=True)
    assert await allowed.locate("sip:x@127.0.0.1:42105") == Located("127.0.0.1", 42105, "UDP")
    assert await allowed.locate("sip:x@rebind.example.com") == Located("127.0.0.1", 5060, "UDP")


async def test_names_that_do_not_resolve_fail_within_the_timeout(resolver: dns.asyncresolver.Resolver) -> None:
    with pytest.raises(Unresolvable):
        await Locator(resolver=resolver).locate("sip:bob@nowhere.example.com")
    with pytest.raises(Unresolvable):  # RFC 6761: never asked
        await Locator(resolver=resolver).locate("sip:bob@phone.invalid")
    silent = dns.asyncresolver.Resolver(configure=False)
    silent.nameservers = ["127.0.0.1"]
    silent.port = free_port()  # nothing answers there
    started = time.monotonic()
    with pytest.raises(Unresolvable):
        await Locator(resolver=silent, timeout_s=0.5).locate("sip:bob@example.com")
    assert time.monotonic() - started < 2.0


def test_validation_refuses_private_sip_destinations_naming_the_field() -> None:
    body = [{"type": "tel", "target": "+15551234567"}, {"type": "sip", "target": "sip:x@127.0.0.1:42105"}]
    with pytest.raises(InvalidArgument) as exc:
        destinations(body, allow_private_sip=False)
    assert exc.value.field == "destinations[1].target"
    assert destinations(body, allow_private_sip=True)[1]["target"] == "sip:x@127.0.0.1:42105"
    assert destinations([{"type": "sip", "target": "sip:bob@example.com"}], allow_private_sip=False)


def test_from_is_well_formed() -> None:
    assert well_formed_from("sip:sip:bob@example.com@voipbin.test") == "sip:bob@example.com"
    assert well_formed_from("sip:+15551234567@voipbin.test") == "sip:+15551234567@voipbin.test"
    assert well_formed_from("sip:anonymous@voipbin.test") == "sip:anonymous@voipbin.test"
