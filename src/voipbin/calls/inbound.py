"""Inbound calls: the UAS side of ``sip.ua`` (``UserAgent.on_incoming_invite``).

Who may call, and where the call goes:

* **The trunk** (source address in ``trunk_allowed_hosts``, default the trunk URI's host; an entry
  may pin a port, ``host:port``) is trusted without digest. Behind the SIP edge (a request whose
  packet comes from one of ``VOIPBIN_SIP_TRUSTED_PROXIES``) the source is the one the edge wrote in
  the sender's Via (``received``/``rport``: :func:`~voipbin.sip.path.via_source`); a Via naming the
  trunk's address in a packet from anywhere else is not believed. Its Request-URI user is an E.164
  number: owned by a customer → an ``incoming`` call runs the number's ``call_flow_id``
  (source = the caller's tel, destination = the number), 180 is sent and the flow answers; not
  owned → 404 and nothing is stored; owned without a usable flow → 480.
* **Anyone else** must be a registered-style extension: the INVITE is challenged with
  407 Proxy-Authenticate in the realm of its From domain (``<customer_id>.registrar.<sip_domain>``)
  and checked against the extension's password by the registrar's shared Digest verifier
  (``sip.digest_auth``: qop=auth, nonces bound to the source and single-use, replay refused).
  The Request-URI user is another extension of the same customer (its ``extension`` or name: its
  contacts ring, a groupcall; none registered: the call ends ``noanswer`` and the caller gets 480) or an E.164 number (out through the trunk, caller ID = the
  customer's first number). The call runs one ``connect`` action: 180 while the callee rings, 200
  when it answers, media bridged, hangup of either side ends both, 486/603 relayed.

Before anything is stored: an offer without a common codec → 488, unparsable SDP → 400.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from voipbin.calls.inbound_leg import InboundLeg
from voipbin.calls.manager import CallManager
from voipbin.common.errors import NotFound
from voipbin.extensions.service import ExtensionService
from voipbin.flows.actions import normalize_actions
from voipbin.flows.service import FlowService
from voipbin.media.ports import PortAllocator, PortsExhaustedError
from voipbin.media.sdp import NoCommonCodecError, SdpError, SessionDescription, create_answer
from voipbin.media.session import RtpSession
from voipbin.numbers.service import NumberService
from voipbin.pods.legs import PodLegs
from voipbin.sip.digest_auth import AuthAttempt, Authenticated, Challenge, DigestVerifier
from voipbin.sip.errors import SipParseError
from voipbin.sip.invite_server import IncomingInvite
from voipbin.sip.path import via_source
from voipbin.sip.registrar import Registrar
from voipbin.sip.uri import parse_uri
from voipbin.store.models import Flow

log = structlog.get_logger(__name__)

E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
_VISUAL_SEPARATORS = re.compile(r"[\s\-().]")
#: the flow of a call to an extension without a registration (hangup noanswer -> 480, RFC 3261 §21.4.18)
UNREGISTERED_CALLEE = {"type": "hangup", "option": {"reason": "noanswer"}}


def to_e164(user: str | None) -> str | None:
    """``+15551234567`` from a Request-URI/From user (``+1555...``, ``1555...``, ``tel``-style
    separators removed), or None when it is not a number."""
    if not user:
        return None
    text = _VISUAL_SEPARATORS.sub("", user)
    if not text.startswith("+"):
        text = "+" + text
    return text if E164.match(text) else None


def parse_allowed_hosts(allowed: str, trunk_uri: str) -> set[tuple[str, int | None]]:
    """``VOIPBIN_TRUNK_ALLOWED_HOSTS`` entries (``host`` or ``host:port``), default the trunk's host."""
    entries = [e.strip() for e in allowed.split(",") if e.strip()]
    if not entries and trunk_uri:
        try:
            entries = [parse_uri(trunk_uri).host]
        except SipParseError:
            entries = []
    out: set[tuple[str, int | None]] = set()
    for entry in entries:
        host, _, port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        out.add((host.lower(), int(port)) if port.isdigit() else (entry.lower(), None))
    return out


@dataclass(frozen=True)
class Reject:
    status: int
    reason: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Caller:
    """An authenticated extension: its customer and extension row id."""

    customer_id: str
    extension_id: str


class RegistrarDomains(Protocol):
    """The account naming of the registrar (:class:`~voipbin.sip.registrar.Registrar` implements it)."""

    def domain_id(self, host: str) -> str | None: ...

    def aor(self, domain_id: str, user: str) -> str: ...

    def known_sources(self, aor: str) -> Callable[[], Awaitable[list[tuple[str, int]]]]: ...


class InviteAuthenticator:
    """Digest for INVITEs (RFC 3261 §22.3: 407 + Proxy-Authenticate) through ``verifier``, the
    :class:`~voipbin.sip.digest_auth.DigestVerifier` REGISTER uses too (``registrar.verifier``: same
    credentials, nonce table and failure counters; only its public :meth:`verify` is called), with
    single-use nonces: a captured INVITE credential cannot place a second call. ``domains`` maps the
    From host to the account's domain id and AOR (the registrar)."""

    def __init__(self, verifier: DigestVerifier, domains: RegistrarDomains) -> None:
        self._verifier = verifier
        self._domains = domains

    async def check(self, incoming: IncomingInvite, source: tuple[str, int] | None = None) -> Caller | Reject:
        """``source``: the caller's address (behind the edge, the one its Via records; default the
        packet's): the nonce is bound to it and failures are counted for it."""
        domains = self._domains
        request = incoming.request
        try:
            from_uri = request.from_.uri
            realm = (from_uri.host if from_uri is not None else "").lower()
            domain_id = domains.domain_id(realm)
            user = from_uri.user if from_uri is not None else None
            if domain_id is None or not user:
                return Reject(403, "Unknown Caller Domain")
            verdict = await self._verifier.verify(AuthAttempt(
                method="INVITE", request_uri=request.uri, realm=realm, domain_id=domain_id, user=user,
                source=source or incoming.source, authorizations=request.headers.get_all("Proxy-Authorization"),
                user_agent=request.headers.get("User-Agent"), single_use=True,
                known_sources=domains.known_sources(domains.aor(domain_id, user))))
        except SipParseError as exc:
            return Reject(400, exc.reason)
        except UnicodeError:
            return Reject(400, "Bad Header Encoding")
        if isinstance(verdict, Challenge):
            return Reject(407, None, tuple(("Proxy-Authenticate", v) for v in verdict.values))
        if isinstance(verdict, Authenticated):
            return Caller(domain_id, verdict.credential.owner_id)
        if verdict.reason == "Username Does Not Match AOR":
            return Reject(403, "Username Does Not Match From")
        headers = (("Retry-After", str(verdict.retry_after_s)),) if verdict.retry_after_s is not None else ()
        return Reject(verdict.status, verdict.reason, headers)


class InboundCalls:
    """Routes new INVITEs to calls. Wire with ``ua.on_incoming_invite = inbound.on_incoming_invite``."""

    def __init__(self, calls: CallManager, *, numbers: NumberService, extensions: ExtensionService,
                 flows: FlowService, registrar: Registrar, ports: PortAllocator, rtp_host: str,
                 advertised_host: str, trunk_hosts: set[tuple[str, int | None]]) -> None:
        self._calls = calls
        self._numbers = numbers
        self._extensions = extensions
        self._flows = flows
        self._registrar = registrar
        self._auth = InviteAuthenticator(registrar.verifier, registrar)
        self._ports = ports
        self._rtp_host = rtp_host
        self._advertised_host = advertised_host
        self.trunk_hosts = trunk_hosts
        #: pod legs (:mod:`voipbin.pods.legs`): INVITEs from other media pods into rooms mixed here
        self.pod_legs: PodLegs | None = None

    def caller_source(self, incoming: IncomingInvite) -> tuple[str, int]:
        """Where the INVITE came from: its packet's source, or behind a trusted edge proxy the address
        the proxy recorded in the caller's Via (:func:`~voipbin.sip.path.via_source`)."""
        return via_source(incoming.request, incoming.source, self._registrar.trusted_proxies)

    def is_trunk(self, source: tuple[str, int]) -> bool:
        host, port = source[0].lower(), source[1]
        return (host, None) in self.trunk_hosts or (host, port) in self.trunk_hosts

    async def on_incoming_invite(self, incoming: IncomingInvite) -> None:
        """Answer the INVITE's fate: a final error response, or an inbound call that owns it
        (a pod leg, checked first, is no call: :mod:`voipbin.pods.legs`)."""
        if self.pod_legs is not None and self.pod_legs.is_pod_leg(incoming.request):
            await self.pod_legs.on_invite(incoming)
            return
        source = self.caller_source(incoming)
        route = await (self._from_trunk(incoming) if self.is_trunk(source)
                       else self._from_extension(incoming, source))
        if isinstance(route, Reject):
            log.info("inbound INVITE refused", status=route.status, uri=str(incoming.request.uri),
                     source=incoming.source)
            incoming.reject(route.status, route.reason, list(route.headers))
            return
        customer_id, source, destination, flow, ring_now = route
        problem = self._check_offer(incoming)
        if problem is not None:
            incoming.reject(problem.status, problem.reason)
            return
        try:
            rtp = await RtpSession.open(self._rtp_host, self._ports)
        except (PortsExhaustedError, OSError) as exc:
            log.warning("no RTP port for an inbound call", error=str(exc))
            incoming.reject(503)
            return
        leg = InboundLeg(incoming, rtp, self._advertised_host)
        if ring_now:
            leg.ringing()
        await self._calls.create_incoming(customer_id, source=source, destination=destination, flow=flow, leg=leg,
                                          data={"sip_call_id": incoming.call_id})

    # ------------------------------------------------------------------ routing

    async def _from_trunk(self, incoming: IncomingInvite) -> Reject | tuple[Any, ...]:
        request = incoming.request
        number = to_e164(request.uri.user)
        owned = await self._numbers.find_active(number) if number else None
        if owned is None:
            return Reject(404)
        if not owned.call_flow_id:
            return Reject(480, "No Flow For Number")
        try:
            flow = await self._flows.get(owned.customer_id, owned.call_flow_id)
        except NotFound:
            return Reject(480, "No Flow For Number")
        caller = request.from_
        caller_number = to_e164(caller.uri.user if caller.uri else None)
        source = _address("tel", caller_number, name=caller.display_name or "") if caller_number else \
            _address("sip", str(caller.uri), name=caller.display_name or "")
        return owned.customer_id, source, _address("tel", owned.number), flow, True

    async def _from_extension(self, incoming: IncomingInvite, source: tuple[str, int]) -> Reject | tuple[Any, ...]:
        auth = await self._auth.check(incoming, source)
        if isinstance(auth, Reject):
            return auth
        customer_id = auth.customer_id
        caller = await self._extensions.get(customer_id, auth.extension_id)
        display = incoming.request.from_.display_name or ""
        source = _address("extension", caller.id, target_name=caller.name, name=display)
        connect_source = _address("extension", caller.extension, target_name=caller.name, name=display)
        dialled = incoming.request.uri.user or ""
        callee = (await self._extensions.find(customer_id, extension=dialled)
                  or await self._extensions.find(customer_id, name=dialled)) if dialled else None
        if callee is not None:
            destination = _address("extension", callee.id, target_name=callee.name)
            if not await self._registrar.location.lookup(self._registrar.aor(customer_id, callee.extension)):
                # not registered: the call ends ``noanswer`` and the caller gets 480 Temporarily Unavailable
                flow = Flow(id=str(uuid.uuid4()), customer_id=customer_id, type="flow", name="", detail="",
                            persist=False, actions=normalize_actions([UNREGISTERED_CALLEE]))
                return customer_id, source, destination, flow, False
        else:
            number = to_e164(dialled)
            if number is None:
                return Reject(404)
            own = await self._numbers.first_owned(customer_id)
            if own is None:
                return Reject(403, "No Caller ID Number")
            destination = _address("tel", number)
            connect_source = _address("tel", own.number, name=display)
        actions = normalize_actions([{"type": "connect", "option": {
            "source": connect_source, "destinations": [destination]}}])
        flow = Flow(id=str(uuid.uuid4()), customer_id=customer_id, type="flow", name="", detail="", persist=False,
                    actions=actions)
        return customer_id, source, destination, flow, False

    def _check_offer(self, incoming: IncomingInvite) -> Reject | None:
        offer = incoming.remote_sdp
        if not offer:
            return None  # delayed offer: we offer in the 200
        try:
            create_answer(SessionDescription.parse(offer), self._advertised_host, 9)
        except NoCommonCodecError:
            return Reject(488)
        except SdpError:
            return Reject(400, "Bad SDP")
        return None


def _address(kind: str, target: str, *, target_name: str = "", name: str = "") -> dict[str, str]:
    return {"type": kind, "target": target, "target_name": target_name, "name": name, "detail": ""}
