"""Registrar (RFC 3261 §10.3) with Digest authentication (RFC 7616, RFC 8760).

The registrar domain of a request - Request-URI host, else To host - has the form
``<domain_id>.registrar.<domain>`` for any ``domain`` of ``sip_domains`` (the first is the primary:
bindings are stored under the AOR ``sip:<user>@<domain_id>.registrar.<primary>`` whichever domain
the phone used; the realm is the host it addressed). ``domain_id`` (the customer id) and the To user
(the extension) name the credential. Behaviour:

* Authentication is :class:`~voipbin.sip.digest_auth.DigestVerifier`'s (qop=auth, nonces bound to the
  source IP and short-lived, ``nc`` replay tracking, digest ``uri`` = Request-URI, failures counted per
  (source, username) with backoff, per account and per source; a phone at the address of one of its
  own bindings is never blocked). No valid answer -> 401 with one challenge per algorithm; replay or
  expired nonce -> 401 ``stale=true``; blocked -> 403 ``Too Many Failed Authentications`` with
  ``Retry-After``; unknown user and wrong password get the *same* 401.
* Bytes that are not UTF-8, non-ASCII hosts or credentials -> 400 (never an exception).
* Expiry per Contact: ``expires`` param, else ``Expires`` header, else ``default_expires``; capped at
  ``max_expires``; ``0 < e < min_expires`` -> 423 Interval Too Brief with ``Min-Expires``.
  ``Contact: *`` with ``Expires: 0`` removes every binding; ``*`` otherwise -> 400 "Invalid Wildcard".
* A refresh with the same Call-ID must carry a higher CSeq, else 500 "Out Of Order Registration".
* 200 OK lists every current binding with its remaining ``expires``.
* Path (RFC 3327): the REGISTER's ``Path`` values are stored with each binding (a request to the contact
  carries them as its route set); the 200 echoes them when the UA supports ``path``, and always says
  ``Supported: path``. A ``Require`` naming another extension -> 420 with ``Unsupported``. From a proxy in
  ``trusted_proxies`` the digest checks see the UA's own address (the Path's ``received``), so that all
  phones behind one edge proxy do not share one nonce binding and one failure budget.
* Changes are reported to ``on_binding_change(BindingChange)`` (sync or async callable).

Wiring: ``stack.route("REGISTER", registrar.on_register)``; ``await registrar.start()`` runs the
binding expiry task, ``await registrar.stop()`` ends it and flushes the location service (the stack knows
nothing of the registrar; it bounds the REGISTERs in progress, see ``StackConfig.max_in_flight``).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from email.utils import formatdate

from voipbin.sip.digest import ALGORITHMS
from voipbin.sip.digest_auth import (
    DEFAULT_NONCE_TTL_S,
    AuthAttempt,
    AuthFailures,
    Authenticated,
    Challenge,
    DigestVerifier,
    FailureLimiter,
)
from voipbin.sip.errors import SipParseError
from voipbin.sip.location import Binding, CredentialStore, LocationService
from voipbin.sip.message import Request, Response, make_response
from voipbin.sip.path import PATH_TAG, path_of, path_source, supports_path, unsupported_required
from voipbin.sip.transaction import ServerTransaction

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BindingChange:
    """``event``: "created" | "refreshed" | "removed" | "expired"."""

    event: str
    binding: Binding


BindingHook = Callable[[BindingChange], Awaitable[None] | None]


class Registrar:
    """Handles REGISTER requests. ``handle(request, source, transport_name) -> Response``.

    ``sip_domain``: the primary domain; ``extra_domains``: more domains whose
    ``<domain_id>.registrar.<domain>`` is accepted too (e.g. "voipbin.net", as upstream phones use).
    ``failure_limiter``: the per-(source, username) limiter (tests shorten it). ``verifier``: the
    :class:`DigestVerifier`, public so that INVITE authentication shares its nonces and counters.
    ``trusted_proxies``: host addresses of the edge proxies (Kamailio) whose Path ``received`` names
    the UA's address (see :func:`~voipbin.sip.path.path_source`).
    """

    def __init__(
        self,
        *,
        sip_domain: str,
        credentials: CredentialStore,
        location: LocationService,
        nonce_secret: bytes,
        on_binding_change: BindingHook | None = None,
        extra_domains: Sequence[str] = (),
        nonce_ttl_s: float = DEFAULT_NONCE_TTL_S,
        min_expires: int = 60,
        max_expires: int = 3600,
        default_expires: int = 3600,
        max_bindings_per_aor: int = 10,
        failure_limiter: FailureLimiter | None = None,
        digest_algorithms: tuple[str, ...] = ALGORITHMS,
        md5_only_user_agents: tuple[str, ...] = ("baresip", "sipp"),
        trusted_proxies: Sequence[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sip_domain = sip_domain.lower()
        domains = [self.sip_domain, *(d.strip().lower() for d in extra_domains if d.strip())]
        self.sip_domains = tuple(dict.fromkeys(domains))
        self._suffixes = tuple(f".registrar.{d}" for d in self.sip_domains)
        self.credentials = credentials
        self.location = location
        self.verifier = DigestVerifier(
            credentials, nonce_secret, nonce_ttl_s=nonce_ttl_s, digest_algorithms=digest_algorithms,
            md5_only_user_agents=md5_only_user_agents, clock=clock,
            failures=AuthFailures(per_source_user=failure_limiter))
        self.on_binding_change = on_binding_change
        self.min_expires, self.max_expires = min_expires, max_expires
        self.default_expires = default_expires
        self.max_bindings_per_aor = max_bindings_per_aor
        self.trusted_proxies = frozenset(h.strip() for h in trusted_proxies if h.strip())
        self._clock = clock
        self._stats = {"registered": 0, "bad_requests": 0}
        self._expiry: asyncio.Task[None] | None = None

    @property
    def stats(self) -> dict[str, int]:
        """Counters: registered, bad_requests, and the verifier's challenged, auth_failed, blocked, replayed."""
        return {**self._stats, **self.verifier.stats}

    def domain_id(self, host: str) -> str | None:
        """``<domain_id>`` of ``<domain_id>.registrar.<domain>`` for any of ``sip_domains``, else None."""
        host = host.lower()
        for suffix in self._suffixes:
            if host.endswith(suffix) and len(host) > len(suffix):
                return host[: -len(suffix)]
        return None

    def aor(self, domain_id: str, user: str) -> str:
        """The canonical AOR of an account: ``sip:<user>@<domain_id>.registrar.<primary domain>``, lower case
        (as the call manager looks bindings up)."""
        return f"sip:{user}@{domain_id}.registrar.{self.sip_domain}".lower()

    def known_sources(self, aor: str) -> Callable[[], Awaitable[list[tuple[str, int]]]]:
        """An async callable listing the (host, port) of ``aor``'s current bindings (the UA's own
        address behind a trusted proxy)."""
        async def sources() -> list[tuple[str, int]]:
            return [path_source(b.path, b.received, self.trusted_proxies)
                    for b in await self.location.lookup(aor, self._clock())]
        return sources

    async def handle(self, request: Request, source: tuple[str, int], transport: str) -> Response:
        """Process one REGISTER (§10.3 steps 1-8) and return the response to send; malformed or
        undecodable input is a 400 naming the problem."""
        try:
            return await self._handle(request, source, transport)
        except SipParseError as exc:
            self._stats["bad_requests"] += 1
            return make_response(request, 400, exc.reason)
        except UnicodeError:
            self._stats["bad_requests"] += 1
            return make_response(request, 400, "Bad Header Encoding")

    async def _handle(self, request: Request, source: tuple[str, int], transport: str) -> Response:
        to = request.to
        assert to.uri is not None
        realm_host = request.uri.host
        domain_id = self.domain_id(realm_host)
        if domain_id is None:
            realm_host = to.uri.host
            domain_id = self.domain_id(realm_host)
        if domain_id is None:
            return make_response(request, 404, "Unknown Registrar Domain")
        user = to.uri.user
        if not user:
            return make_response(request, 404, "Not Found")
        unsupported = unsupported_required(request, (PATH_TAG,)) if "Require" in request.headers else []
        if unsupported:
            response = make_response(request, 420)
            response.headers.add("Unsupported", ", ".join(unsupported))
            return response
        path = path_of(request)
        realm = realm_host.lower()
        aor = self.aor(domain_id, user)
        verdict = await self.verifier.verify(AuthAttempt(
            method=request.method, request_uri=request.uri, realm=realm, domain_id=domain_id, user=user,
            source=path_source(path, source, self.trusted_proxies), authorizations=request.headers.get_all("Authorization"),
            user_agent=request.headers.get("User-Agent"), known_sources=self.known_sources(aor)))
        if isinstance(verdict, Challenge):
            response = make_response(request, 401)
            for value in verdict.values:
                response.headers.add("WWW-Authenticate", value)
            return response
        if not isinstance(verdict, Authenticated):
            response = make_response(request, verdict.status, verdict.reason)
            if verdict.retry_after_s is not None:
                response.headers.add("Retry-After", str(verdict.retry_after_s))
            return response
        return await self._update_bindings(request, source, transport, aor, domain_id, user,
                                           verdict.credential.owner_id, path)

    async def _update_bindings(self, request: Request, source: tuple[str, int], transport: str,
                               aor: str, domain_id: str, user: str, owner_id: str,
                               path: tuple[str, ...]) -> Response:
        call_id = request.call_id
        cseq = request.cseq.seq
        contacts = request.contacts
        header_expires = _expires(request.headers.get("Expires"))
        now = self._clock()
        existing = {b.contact: b for b in await self.location.lookup(aor, now)}
        changes: list[BindingChange] = []

        if any(c.is_wildcard for c in contacts):
            if len(contacts) != 1 or header_expires != 0:
                return make_response(request, 400, "Invalid Wildcard")
            for binding in existing.values():
                if binding.call_id == call_id and binding.cseq >= cseq:
                    return make_response(request, 500, "Out Of Order Registration")
            for binding in await self.location.remove(aor):
                changes.append(BindingChange("removed", binding))
            await self._notify(changes)
            return self._ok(request, [], now, path)

        plan: list[tuple[str, int, dict[str, str | None]]] = []
        for contact in contacts:
            assert contact.uri is not None
            raw = contact.params.get("expires")
            expires = _expires(raw) if raw is not None else header_expires
            if expires is None:
                expires = self.default_expires
            if 0 < expires < self.min_expires:
                response = make_response(request, 423, "Interval Too Brief")
                response.headers.add("Min-Expires", str(self.min_expires))
                return response
            expires = min(expires, self.max_expires)
            uri = str(contact.uri)
            old = existing.get(uri)
            if old is not None and old.call_id == call_id and old.cseq >= cseq:
                return make_response(request, 500, "Out Of Order Registration")
            plan.append((uri, expires, contact.params))
        new_count = len({u for u, e, _ in plan if e > 0 and u not in existing})
        removed_count = len({u for u, e, _ in plan if e == 0 and u in existing})
        if len(existing) + new_count - removed_count > self.max_bindings_per_aor:
            return make_response(request, 403, "Too Many Contacts")

        user_agent = request.headers.get("User-Agent")
        for uri, expires, params in plan:
            old = existing.get(uri)
            if expires == 0:
                for binding in await self.location.remove(aor, uri):
                    changes.append(BindingChange("removed", binding))
                existing.pop(uri, None)
                continue
            q = params.get("q")
            binding = Binding(aor=aor, contact=uri, expires_at=now + expires, received=source,
                              transport=transport, call_id=call_id, cseq=cseq,
                              user_agent=user_agent, domain_id=domain_id, user=user,
                              owner_id=owner_id, q=_float(q), path=path,
                              params={k: v for k, v in params.items() if k not in ("expires", "q")})
            await self.location.save(binding)
            existing[uri] = binding
            changes.append(BindingChange("refreshed" if old is not None else "created", binding))
        self._stats["registered"] += 1
        await self._notify(changes)
        return self._ok(request, list(existing.values()), now, path)

    def _ok(self, request: Request, bindings: list[Binding], now: float, path: tuple[str, ...]) -> Response:
        response = make_response(request, 200)
        for binding in bindings:
            response.headers.add("Contact", f"<{binding.contact}>;expires={binding.expires_in(now)}")
        if path and supports_path(request):  # RFC 3327 §5.3: the stored Path, echoed
            for value in path:
                response.headers.add("Path", value)
        response.headers.add("Supported", PATH_TAG)
        response.headers.add("Date", _date_now())
        return response

    async def _notify(self, changes: list[BindingChange]) -> None:
        if self.on_binding_change is None:
            return
        for change in changes:
            try:
                result = self.on_binding_change(change)
                if inspect.isawaitable(result):
                    await result
            except Exception:  # a faulty hook must not break registration
                log.exception("on_binding_change failed")

    async def expire_bindings(self) -> list[Binding]:
        """Remove expired bindings now and report each as "expired"."""
        gone = await self.location.expire(self._clock())
        await self._notify([BindingChange("expired", b) for b in gone])
        return gone

    async def on_register(self, tx: ServerTransaction) -> Response:
        """The stack's REGISTER route: ``stack.route("REGISTER", registrar.on_register)``; the
        response of :meth:`handle` for the transaction's request, source and transport."""
        return await self.handle(tx.request, tx.source, tx.transport.name)

    async def start(self, expiry_interval_s: float = 5.0) -> None:
        """Start the expiry task: :meth:`expire_bindings` every ``expiry_interval_s`` seconds until
        :meth:`stop`. Starting twice does nothing."""
        if self._expiry is None or self._expiry.done():
            self._expiry = asyncio.create_task(self._run_expiry(expiry_interval_s))

    async def stop(self) -> None:
        """Stop the expiry task (and wait for it), then write what the location service holds back
        (:meth:`LocationService.flush`); safe to call when not started."""
        task, self._expiry = self._expiry, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.location.flush()

    async def _run_expiry(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.expire_bindings()
            except Exception:
                log.exception("binding expiry failed")


_date_second, _date_value = -1, ""  # the last Date value made and its epoch second


def _date_now() -> str:
    """The ``Date`` value for now (RFC 3261 §20.17, RFC 1123 in GMT), made once per second."""
    global _date_second, _date_value
    second = int(time.time())
    if second != _date_second:
        _date_second, _date_value = second, formatdate(second, usegmt=True)
    return _date_value


def _expires(value: str | None) -> int | None:
    if value is None:
        return None
    value = value.strip()
    if not (value.isascii() and value.isdigit()):  # "²".isdigit() is True, int("²") raises
        raise SipParseError("Bad Expires")
    return min(int(value), 2**32 - 1)


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
