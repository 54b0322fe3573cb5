"""Issue 13 finding 5 on SQLite and PostgreSQL: a concurrent burst of OTP guesses evaluates at most
``signup_max_attempts`` codes; one live code per address; per-address and per-source signup limits."""

from __future__ import annotations

import asyncio
import re

import pytest
from sqlalchemy import select

from voipbin.common.errors import InvalidArgument, ResourceExhausted
from voipbin.config import Settings
from voipbin.runtime import Runtime
from voipbin.store.models import Customer, Signup


class Mailbox:
    def __init__(self) -> None:
        self.codes: list[str] = []

    async def send(self, to: str, subject: str, body: str) -> None:
        self.codes.append(re.search(r"\b(\d{6})\b", body).group(1))  # type: ignore[union-attr]


@pytest.fixture
async def rt(db_url: str):  # type: ignore[no-untyped-def]
    runtime = Runtime(Settings(database_url=db_url, sip_enabled=False, _env_file=None),  # type: ignore[call-arg]
                      mailer=Mailbox())
    await runtime.start()
    yield runtime
    await runtime.stop()


async def test_thirty_concurrent_codes_evaluate_at_most_five(rt: Runtime) -> None:
    mailbox: Mailbox = rt.signup._mailer  # type: ignore[assignment]
    temp_token = await rt.signup.signup({"email": "race@example.com", "accepted_tos": True})
    right = mailbox.codes[-1]
    wrong = [f"{(int(right) + i) % 1_000_000:06d}" for i in range(1, 30)]
    guesses = wrong + [right]  # the right code comes last: the burst must be cut off before it

    async def attempt(code: str) -> str:
        try:
            await rt.signup.complete(temp_token, code)
            return "created"
        except ResourceExhausted:
            return "429"
        except InvalidArgument as exc:
            return exc.message

    outcomes = await asyncio.gather(*(attempt(code) for code in guesses))
    # a code is evaluated when it is compared: "code is incorrect" or "created"; every other attempt is
    # refused unevaluated (429, or "already used" once the right code, if it got a turn, completed it)
    evaluated = [o for o in outcomes if o in ("code is incorrect", "created")]
    refused = set(outcomes) - {"code is incorrect", "created"}
    assert len(evaluated) <= rt.settings.signup_max_attempts, outcomes
    assert refused <= {"429", "temp_token is invalid or already used"}, outcomes
    async with rt.sessions() as session:
        attempts = await session.scalar(select(Signup.attempts).where(Signup.temp_token == temp_token))
        created = await session.scalar(select(Customer.id).where(Customer.email == "race@example.com"))
    assert attempts == len(evaluated)
    assert ("created" in outcomes) == (created is not None)
    if created is None:
        assert attempts == rt.settings.signup_max_attempts and "429" in outcomes


async def test_a_new_signup_replaces_the_live_code(rt: Runtime) -> None:
    mailbox: Mailbox = rt.signup._mailer  # type: ignore[assignment]
    first = await rt.signup.signup({"email": "twice@example.com"})
    first_code = mailbox.codes[-1]
    second = await rt.signup.signup({"email": "twice@example.com"})
    with pytest.raises(InvalidArgument, match="temp_token"):
        await rt.signup.complete(first, first_code)
    customer_id, key = await rt.signup.complete(second, mailbox.codes[-1])
    assert customer_id and key["token"].startswith("vb_")


async def test_signups_are_limited_per_address_and_per_source(rt: Runtime) -> None:
    for _ in range(rt.settings.signup_limit_per_address):
        assert await rt.signup.signup({"email": "flood@example.com"}, source="192.0.2.1")
    with pytest.raises(ResourceExhausted) as info:
        await rt.signup.signup({"email": "FLOOD@example.com"}, source="192.0.2.2")
    assert info.value.retry_after > 0
    for i in range(rt.settings.signup_limit_per_source - rt.settings.signup_limit_per_address):
        await rt.signup.signup({"email": f"other{i}@example.com"}, source="192.0.2.1")
    with pytest.raises(ResourceExhausted):
        await rt.signup.signup({"email": "fresh@example.com"}, source="192.0.2.1")


async def test_concurrent_signups_for_one_address_leave_one_live_code(rt: Runtime) -> None:
    tokens = await asyncio.gather(*(rt.signup.signup({"email": "burst@example.com"}) for _ in range(5)))
    async with rt.sessions() as session:
        live = (await session.scalars(select(Signup.temp_token).where(
            Signup.email == "burst@example.com", Signup.tm_complete.is_(None)))).all()
    assert len(live) == 1 and live[0] in tokens
