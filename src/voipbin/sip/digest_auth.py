"""The one Digest verifier of the UAS side: REGISTER (401) and INVITE (407) share it
(RFC 3261 §22.1-§22.4, RFC 7616 §3.3-§3.5, RFC 8760).

A challenge carries ``qop="auth"`` and one nonce per offered algorithm. A nonce is bound by HMAC to the
realm and the source IP it was sent to, lives ``nonce_ttl_s`` seconds (default 30) and is recorded in a
bounded table of outstanding nonces with the highest ``nc`` seen. An answer is checked in this order:

1. every ``Authorization`` value we read is printable ASCII (else :class:`BadCredentials`, a 400);
2. realm ours, algorithm offered, ``qop=auth`` with an 8-hex-digit ``nc`` (else a fresh challenge);
3. nonce authentic for this realm and source IP (else a fresh challenge, counted as a failure);
   expired, or unknown to the table (evicted, issued by another process, used up) -> ``stale=true``;
4. ``nc`` greater than every ``nc`` used before with that nonce (RFC 7616 §3.4: a repeated or lower
   one is a replay) -> ``stale=true`` and a fresh nonce;
5. digest ``uri`` equal to the Request-URI (RFC 3261 §22.4 / RFC 2617 §3.2.2.5) -> else a failure;
6. ``username`` equal to the AOR user -> else 403;
7. the response for the stored password (computed for unknown users too: no user enumeration).

``single_use`` nonces (INVITE challenges) are removed by their first successful use.

Failures (:class:`AuthFailures`) are counted per (source IP, username) with exponential backoff
(``block_s`` doubling per block up to ``max_block_s``), per account (any source; a higher limit) and
per source IP (any username; against scanners). A blocked request gets 403 with ``Retry-After`` without
its credential being looked up, unless it comes from the exact (IP, port) of one of the account's
current bindings: a registered phone is never locked out by someone else's failures.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import struct
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from voipbin.sip.digest import ALGORITHMS, Credentials, format_challenge
from voipbin.sip.errors import SipParseError
from voipbin.sip.location import Credential, CredentialStore
from voipbin.sip.uri import SipUri, parse_uri

_DUMMY_PASSWORD = "\x00no-such-user\x00"
_PRINTABLE_ASCII = re.compile(r"^[\t\x20-\x7e]*$")
_NC = re.compile(r"^[0-9a-fA-F]{8}$")

DEFAULT_NONCE_TTL_S = 30.0
DEFAULT_MAX_NONCES = 65536


class BadCredentials(SipParseError):
    """An ``Authorization`` value we cannot read (non-ASCII bytes, broken grammar): answer 400."""


# An outstanding nonce: (expires_at, source_ip, last_nc). A plain tuple of atoms, which the garbage collector
# stops tracking: at 2,000 REGISTER/s the table holds its 65,536 nonces, and as dataclass instances every
# full collection walked them (tens of ms on the event loop, issue 21).
NonceState = tuple[float, str, int]


class NonceManager:
    """HMAC-signed nonces bound to (realm, source IP), plus a bounded table of the outstanding ones.

    ``issue(realm, source_ip)`` returns a nonce valid ``ttl_s`` seconds. ``check(nonce, realm,
    source_ip)`` returns "valid", "stale" (authentic but expired or no longer outstanding) or "invalid"
    (forged, another realm, another source). ``use(nonce, nc)`` records a nonce count and returns False
    for a repeated or lower one (replay). Memory: at most ``max_nonces`` outstanding (oldest forgotten).
    """

    def __init__(self, secret: bytes, ttl_s: float = DEFAULT_NONCE_TTL_S, clock: Callable[[], float] = time.time,
                 max_nonces: int = DEFAULT_MAX_NONCES) -> None:
        self._secret = secret
        self.ttl_s = ttl_s
        self._clock = clock
        self._max = max_nonces
        self._table: OrderedDict[str, NonceState] = OrderedDict()

    def _mac(self, body: bytes, realm: str, source_ip: str) -> bytes:
        key = body + realm.encode("ascii", "replace") + b"\x00" + source_ip.encode("ascii", "replace")
        return hmac.new(self._secret, key, hashlib.sha256).digest()[:16]

    def issue(self, realm: str, source_ip: str = "") -> str:
        """A fresh nonce for ``realm`` sent to ``source_ip`` (recorded as outstanding)."""
        now = self._clock()
        body = struct.pack(">d", now) + os.urandom(8)
        nonce = base64.urlsafe_b64encode(body + self._mac(body, realm, source_ip)).decode().rstrip("=")
        self._table[nonce] = (now + self.ttl_s, source_ip, 0)
        while len(self._table) > self._max:
            self._table.popitem(last=False)
        return nonce

    def check(self, nonce: str, realm: str, source_ip: str = "") -> str:
        """"valid", "stale" or "invalid" (see the class docstring)."""
        if not nonce.isascii():
            return "invalid"
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except (ValueError, TypeError):
            return "invalid"
        if len(raw) != 32:
            return "invalid"
        body, mac = raw[:16], raw[16:]
        if not hmac.compare_digest(mac, self._mac(body, realm, source_ip)):
            return "invalid"
        (issued,) = struct.unpack(">d", body[:8])
        age = self._clock() - issued
        state = self._table.get(nonce)
        if state is None or age < -5 or age > self.ttl_s:
            self._table.pop(nonce, None)
            return "stale"
        return "valid"

    def use(self, nonce: str, nc: int) -> bool:
        """Record ``nc`` for an outstanding nonce; False when it is not above every earlier one."""
        state = self._table.get(nonce)
        if state is None or nc <= state[2]:
            return False
        self._table[nonce] = (state[0], state[1], nc)
        return True

    def discard(self, nonce: str) -> None:
        """Forget ``nonce`` (a single-use nonce after its first success)."""
        self._table.pop(nonce, None)

    def __len__(self) -> int:
        return len(self._table)


class FailureLimiter:
    """Authentication failures per key in a sliding window, with exponential backoff; bounded memory.

    More than ``max_failures`` within ``window_s`` blocks the key for ``block_s`` seconds, doubled for
    each further block (up to ``max_block_s``); :meth:`success` forgets the key.
    """

    def __init__(self, max_failures: int = 10, window_s: float = 60.0, block_s: float = 60.0,
                 max_block_s: float = 3600.0, max_keys: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures, self.window_s, self.block_s = max_failures, window_s, block_s
        self.max_block_s = max_block_s
        self._max_keys = max_keys
        self._clock = clock
        self._state: OrderedDict[object, tuple[float, int, float, int]] = OrderedDict()  # start, n, until, blocks

    def blocked_for(self, key: object) -> float:
        """Seconds ``key`` stays blocked (0 when it is not)."""
        entry = self._state.get(key)
        return 0.0 if entry is None else max(0.0, entry[2] - self._clock())

    def failure(self, key: object) -> None:
        now = self._clock()
        start, count, until, blocks = self._state.pop(key, (now, 0, 0.0, 0))
        if now - start > self.window_s:
            start, count = now, 0
        count += 1
        if count > self.max_failures:
            until = now + min(self.max_block_s, self.block_s * 2 ** blocks)
            start, count, blocks = now, 0, blocks + 1
        self._state[key] = (start, count, until, blocks)
        while len(self._state) > self._max_keys:
            self._state.popitem(last=False)

    def success(self, key: object) -> None:
        self._state.pop(key, None)


class AuthFailures:
    """The three failure counters: (source IP, username), account (domain id, username), source IP."""

    def __init__(self, per_source_user: FailureLimiter | None = None, per_account: FailureLimiter | None = None,
                 per_source: FailureLimiter | None = None) -> None:
        self.per_source_user = per_source_user or FailureLimiter()
        self.per_account = per_account or FailureLimiter(max_failures=50, window_s=300.0, block_s=60.0)
        self.per_source = per_source or FailureLimiter(max_failures=100, window_s=60.0, block_s=60.0)

    def blocked_for(self, source_ip: str, domain_id: str, user: str) -> float:
        return max(self.per_source_user.blocked_for((source_ip, user)),
                   self.per_account.blocked_for((domain_id, user)),
                   self.per_source.blocked_for(source_ip))

    def failure(self, source_ip: str, domain_id: str, user: str) -> None:
        self.per_source_user.failure((source_ip, user))
        self.per_account.failure((domain_id, user))
        self.per_source.failure(source_ip)

    def success(self, source_ip: str, user: str) -> None:
        self.per_source_user.success((source_ip, user))


@dataclass(frozen=True)
class AuthAttempt:
    """What the verifier needs of one request.

    ``realm``: the registrar domain the UA addressed (lower case); ``domain_id``/``user``: the account
    (customer id, extension); ``authorizations``: the ``Authorization`` (REGISTER) or
    ``Proxy-Authorization`` (INVITE) values; ``known_sources``: an async callable returning the
    (host, port) of the account's current bindings (asked only when a block applies).
    """

    method: str
    request_uri: SipUri
    realm: str
    domain_id: str
    user: str
    source: tuple[str, int]
    authorizations: Sequence[str]
    user_agent: str | None = None
    single_use: bool = False
    known_sources: Callable[[], Awaitable[list[tuple[str, int]]]] | None = None


@dataclass(frozen=True)
class Authenticated:
    credential: Credential


@dataclass(frozen=True)
class Challenge:
    """Send 401/407 with these challenge values (``WWW-Authenticate`` / ``Proxy-Authenticate``)."""

    values: tuple[str, ...]
    stale: bool = False


@dataclass(frozen=True)
class Refused:
    status: int
    reason: str
    retry_after_s: int | None = None


Verdict = Authenticated | Challenge | Refused


class DigestVerifier:
    """Checks Digest answers and issues challenges; see the module docstring for the rules.

    ``md5_only_user_agents``: a UA whose ``User-Agent`` starts with one of these (lower case) is
    challenged with MD5 only (libre 1.x fails on SHA-256; sipp 3.6 knows MD5 only).
    """

    def __init__(self, credentials: CredentialStore, nonce_secret: bytes, *,
                 nonce_ttl_s: float = DEFAULT_NONCE_TTL_S, digest_algorithms: tuple[str, ...] = ALGORITHMS,
                 md5_only_user_agents: tuple[str, ...] = ("baresip", "sipp"),
                 failures: AuthFailures | None = None, clock: Callable[[], float] = time.time,
                 max_nonces: int = DEFAULT_MAX_NONCES) -> None:
        self.credentials = credentials
        self.nonces = NonceManager(nonce_secret, nonce_ttl_s, clock, max_nonces)
        self.digest_algorithms = digest_algorithms
        self.md5_only_user_agents = tuple(p.lower() for p in md5_only_user_agents)
        self.failures = failures or AuthFailures()
        self.stats = {"challenged": 0, "auth_failed": 0, "blocked": 0, "replayed": 0}

    async def verify(self, attempt: AuthAttempt) -> Verdict:
        """The verdict for ``attempt``. Raises :class:`BadCredentials` (answer 400) for an unreadable
        ``Authorization`` value."""
        source_ip = attempt.source[0]
        blocked = self.failures.blocked_for(source_ip, attempt.domain_id, attempt.user)
        if blocked > 0 and not await self._known(attempt):
            self.stats["blocked"] += 1
            return Refused(403, "Too Many Failed Authentications", int(blocked) + 1)
        creds = self._credentials(attempt)
        if creds is None:
            self.stats["challenged"] += 1
            return self.challenge(attempt)
        verdict = self.nonces.check(creds.nonce, attempt.realm, source_ip)
        if verdict == "stale":
            return self.challenge(attempt, stale=True)
        if verdict == "invalid":
            return self._failed(attempt)
        if not self.nonces.use(creds.nonce, int(creds.nc, 16)):
            self.stats["replayed"] += 1
            return self.challenge(attempt, stale=True)
        if not _same_uri(creds.uri, attempt.request_uri):
            return self._failed(attempt)
        if creds.username != attempt.user:
            self._count_failure(attempt)
            return Refused(403, "Username Does Not Match AOR")
        credential = await self.credentials.lookup(attempt.domain_id, attempt.user)
        ok = creds.matches(credential.password if credential is not None else _DUMMY_PASSWORD, attempt.method)
        if credential is None or not ok:
            return self._failed(attempt)
        if attempt.single_use:
            self.nonces.discard(creds.nonce)
        self.failures.success(source_ip, attempt.user)
        return Authenticated(credential)

    def challenge(self, attempt: AuthAttempt, stale: bool = False) -> Challenge:
        """Fresh nonces, one per algorithm offered to this UA (RFC 8760 §2.4 order)."""
        algorithms = self.digest_algorithms
        if (attempt.user_agent or "").lower().startswith(self.md5_only_user_agents):
            algorithms = ("MD5",)
        values = tuple(format_challenge(attempt.realm, self.nonces.issue(attempt.realm, attempt.source[0]),
                                        algorithm, stale) for algorithm in algorithms)
        return Challenge(values, stale)

    def _credentials(self, attempt: AuthAttempt) -> Credentials | None:
        for value in attempt.authorizations:
            if not _PRINTABLE_ASCII.match(value):
                raise BadCredentials("Bad Authorization")
            try:
                parsed = Credentials.from_header(value)
            except SipParseError:
                continue
            if (parsed.realm.lower() == attempt.realm and parsed.algorithm.upper() in self.digest_algorithms
                    and parsed.qop == "auth" and _NC.match(parsed.nc) and parsed.cnonce):
                return parsed
        return None

    async def _known(self, attempt: AuthAttempt) -> bool:
        if attempt.known_sources is None:
            return False
        return tuple(attempt.source) in {tuple(s) for s in await attempt.known_sources()}

    def _count_failure(self, attempt: AuthAttempt) -> None:
        self.stats["auth_failed"] += 1
        self.failures.failure(attempt.source[0], attempt.domain_id, attempt.user)

    def _failed(self, attempt: AuthAttempt) -> Challenge:
        self._count_failure(attempt)
        return self.challenge(attempt)


def _same_uri(digest_uri: str, request_uri: SipUri) -> bool:
    """RFC 3261 §19.1.4 comparison of the digest ``uri`` with the Request-URI (case-insensitive
    scheme, host and parameter names; user and password case-sensitive)."""
    try:
        uri = parse_uri(digest_uri)
    except SipParseError:
        return False

    def key(u: SipUri) -> tuple:
        return (u.scheme.lower(), u.user, u.password, u.host.lower(), u.port,
                {k.lower(): (v.lower() if v else v) for k, v in u.params.items()}, u.headers, u.opaque)
    return key(uri) == key(request_uri)
