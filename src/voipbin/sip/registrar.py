"""Registrar (RFC 3261 §10.3) with Digest authentication (RFC 7616, RFC 8760).

The registrar domain of a request - Request-URI host, else To host - has the form
``<domain_id>.registrar.<sip_domain>``; ``domain_id`` (the customer id) and the To user (the
extension) name the credential. Behaviour:

* No valid ``Authorization`` for our realm -> 401 with one challenge per ``digest_algorithms``
  (default SHA-256 then MD5, RFC 8760 §2.4), qop=auth. Interop quirk: a UA whose ``User-Agent``
  starts with one of ``md5_only_user_agents`` (default: "baresip", "sipp" - libre 1.x answers any SHA-256
  challenge with ENOSYS and gives up; sipp 3.6 knows MD5 only) is challenged with MD5 only.
  An expired nonce -> 401 ``stale=true``. Unknown user and wrong password get the *same* 401 with a
  fresh challenge (no user enumeration; the digest is computed either way).
* More than ``max_auth_failures`` failed attempts from one source IP within ``failure_window_s``:
  that IP gets ``403 Too Many Failed Authentications`` with ``Retry-After`` for ``block_s`` seconds,
  without the credential being looked up. Successful attempts do not reset the counter.
* Expiry per Contact: ``expires`` param, else ``Expires`` header, else ``default_expires``; capped at
  ``max_expires``; ``0 < e < min_expires`` -> 423 Interval Too Brief with ``Min-Expires``.
  ``Contact: *`` with ``Expires: 0`` removes every binding; ``*`` otherwise -> 400 "Invalid Wildcard".
* A refresh with the same Call-ID must carry a higher CSeq, else 500 "Out Of Order Registration".
* 200 OK lists every current binding with its remaining ``expires``.
* Changes are reported to ``on_binding_change(BindingChange)`` (sync or async callable).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import formatdate

from voipbin.sip.digest import ALGORITHMS, Credentials, NonceManager, format_challenge
from voipbin.sip.errors import SipParseError
from voipbin.sip.location import Binding, CredentialStore, LocationService
from voipbin.sip.message import Request, Response, make_response

log = logging.getLogger(__name__)

_DUMMY_PASSWORD = "\x00no-such-user\x00"


@dataclass(frozen=True)
class BindingChange:
    """``event``: "created" | "refreshed" | "removed" | "expired"."""

    event: str
    binding: Binding


BindingHook = Callable[[BindingChange], Awaitable[None] | None]


class FailureLimiter:
    """Counts authentication failures per key (source IP) in a sliding window; bounded memory."""

    def __init__(self, max_failures: int = 10, window_s: float = 60.0, block_s: float = 60.0,
                 max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures, self.window_s, self.block_s = max_failures, window_s, block_s
        self._max_keys = max_keys
        self._clock = clock
        self._state: OrderedDict[str, tuple[float, int, float]] = OrderedDict()  # start, count, until

    def blocked_for(self, key: str) -> float:
        """Seconds ``key`` stays blocked (0 when it is not)."""
        entry = self._state.get(key)
        if entry is None:
            return 0.0
        return max(0.0, entry[2] - self._clock())

    def failure(self, key: str) -> None:
        now = self._clock()
        start, count, until = self._state.pop(key, (now, 0, 0.0))
        if now - start > self.window_s:
            start, count = now, 0
        count += 1
        if count > self.max_failures:
            until = now + self.block_s
            start, count = now, 0
        self._state[key] = (start, count, until)
        while len(self._state) > self._max_keys:
            self._state.popitem(last=False)


class Registrar:
    """Handles REGISTER requests. ``handle(request, source, transport_name) -> Response``."""

    def __init__(
        self,
        *,
        sip_domain: str,
        credentials: CredentialStore,
        location: LocationService,
        nonce_secret: bytes,
        on_binding_change: BindingHook | None = None,
        nonce_ttl_s: float = 300.0,
        min_expires: int = 60,
        max_expires: int = 3600,
        default_expires: int = 3600,
        max_bindings_per_aor: int = 10,
        failure_limiter: FailureLimiter | None = None,
        digest_algorithms: tuple[str, ...] = ALGORITHMS,
        md5_only_user_agents: tuple[str, ...] = ("baresip", "sipp"),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sip_domain = sip_domain.lower()
        self._suffix = f".registrar.{self.sip_domain}"
        self.credentials = credentials
        self.location = location
        self.nonces = NonceManager(nonce_secret, nonce_ttl_s, clock)
        self.on_binding_change = on_binding_change
        self.min_expires, self.max_expires = min_expires, max_expires
        self.default_expires = default_expires
        self.max_bindings_per_aor = max_bindings_per_aor
        self.failures = failure_limiter or FailureLimiter()
        self.digest_algorithms = digest_algorithms
        self.md5_only_user_agents = tuple(p.lower() for p in md5_only_user_agents)
        self._clock = clock
        self.stats = {"registered": 0, "challenged": 0, "auth_failed": 0, "blocked": 0}

    def domain_id(self, host: str) -> str | None:
        """``<domain_id>`` of ``<domain_id>.registrar.<sip_domain>``, else None."""
        host = host.lower()
        if host.endswith(self._suffix) and len(host) > len(self._suffix):
            return host[: -len(self._suffix)]
        return None

    async def handle(self, request: Request, source: tuple[str, int], transport: str) -> Response:
        """Process one REGISTER (§10.3 steps 1-8) and return the response to send."""
        try:
            return await self._handle(request, source, transport)
        except SipParseError as exc:
            return make_response(request, 400, exc.reason)

    async def _handle(self, request: Request, source: tuple[str, int], transport: str) -> Response:
        to = request.to
        assert to.uri is not None
        realm_host = request.uri.host if self.domain_id(request.uri.host) else to.uri.host
        domain_id = self.domain_id(realm_host)
        if domain_id is None:
            return make_response(request, 404, "Unknown Registrar Domain")
        user = to.uri.user
        if not user:
            return make_response(request, 404, "Not Found")
        realm = realm_host.lower()

        blocked = self.failures.blocked_for(source[0])
        if blocked > 0:
            self.stats["blocked"] += 1
            response = make_response(request, 403, "Too Many Failed Authentications")
            response.headers.add("Retry-After", str(int(blocked) + 1))
            return response

        creds: Credentials | None = None
        for value in request.headers.get_all("Authorization"):
            try:
                parsed = Credentials.from_header(value)
            except SipParseError:
                continue
            if parsed.realm.lower() == realm and parsed.algorithm.upper() in self.digest_algorithms:
                creds = parsed
                break
        if creds is None:
            self.stats["challenged"] += 1
            return self._challenge(request, realm)
        verdict = self.nonces.check(creds.nonce, realm)
        if verdict == "stale":
            return self._challenge(request, realm, stale=True)
        if creds.username != user:
            self._fail(source)
            return make_response(request, 403, "Username Does Not Match AOR")
        credential = await self.credentials.lookup(domain_id, user)
        password = credential.password if credential is not None else _DUMMY_PASSWORD
        ok = creds.matches(password, request.method)
        if verdict != "valid" or credential is None or not ok:
            self._fail(source)
            return self._challenge(request, realm)
        return await self._update_bindings(request, source, transport, realm, domain_id, user,
                                           credential.owner_id)

    def _fail(self, source: tuple[str, int]) -> None:
        self.stats["auth_failed"] += 1
        self.failures.failure(source[0])

    def _challenge(self, request: Request, realm: str, stale: bool = False) -> Response:
        response = make_response(request, 401)
        algorithms = self.digest_algorithms
        user_agent = (request.headers.get("User-Agent") or "").lower()
        if user_agent.startswith(self.md5_only_user_agents):
            algorithms = ("MD5",)
        for algorithm in algorithms:
            nonce = self.nonces.issue(realm)
            response.headers.add("WWW-Authenticate", format_challenge(realm, nonce, algorithm, stale))
        return response

    async def _update_bindings(self, request: Request, source: tuple[str, int], transport: str,
                               realm: str, domain_id: str, user: str, owner_id: str) -> Response:
        aor = f"sip:{user}@{realm}"
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
            return self._ok(request, [], now)

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
                              owner_id=owner_id, q=_float(q),
                              params={k: v for k, v in params.items() if k not in ("expires", "q")})
            await self.location.save(binding)
            existing[uri] = binding
            changes.append(BindingChange("refreshed" if old is not None else "created", binding))
        self.stats["registered"] += 1
        await self._notify(changes)
        return self._ok(request, list(existing.values()), now)

    def _ok(self, request: Request, bindings: list[Binding], now: float) -> Response:
        response = make_response(request, 200)
        for binding in bindings:
            response.headers.add("Contact", f"<{binding.contact}>;expires={binding.expires_in(now)}")
        response.headers.add("Date", formatdate(usegmt=True))
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

    async def run_expiry(self, interval_s: float = 5.0) -> None:
        """Call :meth:`expire_bindings` every ``interval_s`` until cancelled."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.expire_bindings()
            except Exception:
                log.exception("binding expiry failed")


def _expires(value: str | None) -> int | None:
    if value is None:
        return None
    value = value.strip()
    if not value.isdigit():
        raise SipParseError("Bad Expires")
    return min(int(value), 2**32 - 1)


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
