"""Headless signup (seed 003): ``/auth/signup`` mails a 6-digit OTP, ``/auth/complete-signup`` verifies it.

``signup`` always answers 200 with a ``temp_token`` ("" when the e-mail is taken or invalid) so
that nobody can learn which addresses have accounts. A ``temp_token`` allows
``signup_max_attempts`` (5) code attempts (then 429) and expires after ``signup_otp_ttl_seconds``.

Against guessing (issue 13, finding 5): each attempt is counted by one atomic
``UPDATE ... SET attempts = attempts + 1 WHERE attempts < max RETURNING`` before the code is compared,
so concurrent attempts cannot exceed the limit on SQLite or PostgreSQL; one address has one live code
(a new signup deletes the older ones); signups are limited per address and per source address.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import Any

import structlog
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from voipbin.auth.accesskeys import AccesskeyService
from voipbin.auth.limits import RateLimiter
from voipbin.auth.mail import Mailer
from voipbin.common.clock import utcnow
from voipbin.common.errors import InvalidArgument, ResourceExhausted
from voipbin.customers.service import CustomerService, validate_webhook
from voipbin.store.models import Signup

log = structlog.get_logger(__name__)

REPLACE_ATTEMPTS = 3  # concurrent signups for one address: each replaces the live code, the last one wins
PROFILE_FIELDS = ("name", "detail", "phone_number", "address", "webhook_method", "webhook_uri")


def _hash_code(temp_token: str, code: str) -> str:
    return hashlib.sha256(f"{temp_token}:{code}".encode()).hexdigest()


class SignupService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], customers: CustomerService,
                 accesskeys: AccesskeyService, mailer: Mailer, *, ttl_seconds: int, max_attempts: int,
                 per_address: int = 1 << 62, per_source: int = 1 << 62, window_seconds: float = 3600.0) -> None:
        self._sessions = sessions
        self._customers = customers
        self._accesskeys = accesskeys
        self._mailer = mailer
        self._ttl = timedelta(seconds=ttl_seconds)
        self._max_attempts = max_attempts
        self._per_address = RateLimiter(per_address, window_seconds, what="signups for this address")
        self._per_source = RateLimiter(per_source, window_seconds, what="signups from this address")

    async def signup(self, body: dict[str, Any], *, source: str = "") -> str:
        """Start a signup; returns the temp_token, or "" (still 200) when it cannot proceed.

        Raises InvalidArgument only for what the caller can see without enumeration:
        a missing ``email`` or ``accepted_tos: false``; ResourceExhausted (429) when ``source`` (the
        client address) or the address asked too often (counted alike for taken and free addresses).
        """
        self._per_source.check_and_hit(source)
        email = body.get("email")
        if not isinstance(email, str) or not email:
            raise InvalidArgument("email is required", field="email")
        if body.get("accepted_tos") is False:
            raise InvalidArgument("accepted_tos must be true", field="accepted_tos")
        try:
            email = validate_email(email, check_deliverability=False).normalized.lower()
        except EmailNotValidError:
            return ""
        self._per_address.check_and_hit(email)
        profile = {k: body[k] for k in PROFILE_FIELDS if isinstance(body.get(k), str)}
        try:
            validate_webhook(profile.get("webhook_method"), profile.get("webhook_uri"))
        except InvalidArgument:
            return ""
        code = f"{secrets.randbelow(1_000_000):06d}"
        temp_token = secrets.token_hex(16)
        for _ in range(REPLACE_ATTEMPTS):
            try:
                async with self._sessions() as db, db.begin():
                    if await self._customers.find_by_email(db, email) is not None:
                        log.info("signup for a registered e-mail ignored")
                        return ""
                    await db.execute(delete(Signup).where(Signup.email == email, Signup.tm_complete.is_(None)))
                    db.add(Signup(temp_token=temp_token, email=email, profile=profile,
                                       code_hash=_hash_code(temp_token, code), tm_expire=utcnow() + self._ttl))
                break
            except IntegrityError:  # a concurrent signup for the address won uq_signups_email_live: replace it
                continue
        else:
            return ""
        await self._mailer.send(
            email, "Your VoIPBIN verification code",
            f"Your VoIPBIN verification code is {code}.\n\nIt expires in "
            f"{int(self._ttl.total_seconds() // 60)} minutes.\n")
        return temp_token

    async def complete(self, temp_token: Any, code: Any) -> tuple[str, dict[str, Any]]:
        """Verify the code; returns ``(customer_id, {"id", "token"})`` of the new accesskey.

        Raises InvalidArgument (400) for a missing/unknown/expired token or a wrong code, and
        ResourceExhausted (429) once the attempts for this temp_token are used up.
        """
        if not isinstance(temp_token, str) or not temp_token:
            raise InvalidArgument("temp_token is required", field="temp_token")
        if not isinstance(code, str) or not code:
            raise InvalidArgument("code is required", field="code")
        async with self._sessions() as db, db.begin():
            counted = (await db.execute(
                update(Signup)
                .where(Signup.temp_token == temp_token, Signup.tm_complete.is_(None),
                       Signup.attempts < self._max_attempts)
                .values(attempts=Signup.attempts + 1)
                .returning(Signup.code_hash, Signup.tm_expire))).one_or_none()
            if counted is None:
                attempts = await db.scalar(select(Signup.attempts).where(
                    Signup.temp_token == temp_token, Signup.tm_complete.is_(None)))
        if counted is None:
            if attempts is None:
                raise InvalidArgument("temp_token is invalid or already used", field="temp_token")
            raise ResourceExhausted("too many verification attempts for this temp_token; sign up again",
                                    retry_after=int(self._ttl.total_seconds()))
        code_hash, tm_expire = counted
        if tm_expire <= utcnow():
            raise InvalidArgument("temp_token has expired; sign up again", field="temp_token")
        if not hmac.compare_digest(code_hash, _hash_code(temp_token, code)):
            raise InvalidArgument("code is incorrect", field="code")
        async with self._sessions() as db, db.begin():
            signup = (await db.execute(
                update(Signup).where(Signup.temp_token == temp_token, Signup.tm_complete.is_(None))
                .values(tm_complete=utcnow()).returning(Signup.email, Signup.profile))).one_or_none()
            if signup is None or await self._customers.find_by_email(db, signup.email) is not None:
                raise InvalidArgument("temp_token is invalid or already used", field="temp_token")
            customer = await self._customers.create(db, email=signup.email, email_verified=True,
                                                    **signup.profile)
            key, token = await self._accesskeys.create_in(db, customer.id, name="default",
                                                          detail="created by signup")
        await self._customers.publish(customer, "customer_created")
        return customer.id, {"id": key.id, "token": token}
