"""Login tokens: HS256 JWTs valid for ``jwt_ttl_seconds`` (7 days by default)."""

from __future__ import annotations

import time
from datetime import timedelta

import jwt

from voipbin.auth.identity import Identity
from voipbin.common.clock import utcnow
from voipbin.common.errors import Unauthenticated

ALGORITHM = "HS256"
VERIFIED_MAX_ENTRIES = 10_000


class TokenIssuer:
    """Issues and verifies login JWTs (claims: ``sub`` agent id, ``customer_id``, ``permission``)."""

    def __init__(self, secret: str, ttl_seconds: int) -> None:
        self._secret = secret
        self._ttl = timedelta(seconds=ttl_seconds)
        # verified tokens -> (identity, exp): a hit saves the HMAC and the JSON decode; ``exp`` is checked
        # on every use. A plain dict (a cachetools TTLCache expired entries on every get: ~4 us of each
        # request, issue 21), bounded: past VERIFIED_MAX_ENTRIES the oldest entry goes.
        self._verified: dict[str, tuple[Identity, float]] = {}

    def issue(self, *, agent_id: str, customer_id: str, permission: int, username: str) -> str:
        now = utcnow()
        claims = {
            "sub": agent_id,
            "customer_id": customer_id,
            "permission": permission,
            "username": username,
            "iat": now,
            "exp": now + self._ttl,
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> Identity:
        """The identity in ``token``; raises Unauthenticated (-> 401) when expired or forged."""
        hit = self._verified.get(token)
        if hit is not None and hit[1] > time.time():
            return hit[0]
        try:
            claims = jwt.decode(token, self._secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]})
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("token has expired") from exc
        except jwt.PyJWTError as exc:
            raise Unauthenticated("token is invalid") from exc
        identity = Identity(
            customer_id=str(claims["customer_id"]),
            permission=int(claims.get("permission", 0)),
            kind="token",
            agent_id=str(claims["sub"]),
        )
        if len(self._verified) >= VERIFIED_MAX_ENTRIES:
            del self._verified[next(iter(self._verified))]
        self._verified[token] = (identity, float(claims["exp"]))
        return identity
