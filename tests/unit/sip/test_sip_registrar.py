"""Registrar behaviour (RFC 3261 §10.3) driven directly, without sockets."""

from __future__ import annotations

import asyncio

import pytest

from voipbin.sip.digest import build_authorization, pick_challenge
from voipbin.sip.location import InMemoryCredentialStore, InMemoryLocationService
from voipbin.sip.message import Request, Response
from voipbin.sip.parser import parse_message
from voipbin.sip.registrar import BindingChange, FailureLimiter, Registrar

DOMAIN = "c1.registrar.voipbin.test"
SRC = ("192.0.2.10", 5062)


class Env:
    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.creds = InMemoryCredentialStore()
        self.creds.add("c1", "100", "pw", owner_id="ext-100")
        self.location = InMemoryLocationService()
        self.events: list[BindingChange] = []
        self.registrar = Registrar(
            sip_domain="voipbin.test", credentials=self.creds, location=self.location,
            nonce_secret=b"k", on_binding_change=self.events.append, clock=lambda: self.now,
            failure_limiter=FailureLimiter(max_failures=3, window_s=60, block_s=30,
                                           clock=lambda: self.now))
        self.cseq = 0

    def register(self, *extra: str, user: str = "100", host: str = DOMAIN,
                 contact: str | None = "<sip:100@192.0.2.10:5062>", call_id: str = "cid-1") -> Request:
        self.cseq += 1
        lines = [f"REGISTER sip:{host} SIP/2.0", f"Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK{self.cseq}",
                 "Max-Forwards: 70", f"From: <sip:{user}@{host}>;tag=f1", f"To: <sip:{user}@{host}>",
                 f"Call-ID: {call_id}", f"CSeq: {self.cseq} REGISTER"]
        if contact:
            lines.append(f"Contact: {contact}")
        msg = parse_message(("\r\n".join([*lines, *extra, "Content-Length: 0"]) + "\r\n\r\n").encode())
        assert isinstance(msg, Request)
        return msg

    async def send(self, request: Request, password: str | None = "pw", user: str = "100") -> Response:
        first = await self.registrar.handle(request, SRC, "UDP")
        if first.status != 401 or password is None:
            return first
        challenge = pick_challenge(first.headers.get_all("WWW-Authenticate"))
        request.headers.add("Authorization", build_authorization(
            challenge, method="REGISTER", uri=str(request.uri), username=user, password=password))
        self.cseq += 1
        request.headers.set("CSeq", f"{self.cseq} REGISTER")
        return await self.registrar.handle(request, SRC, "UDP")


@pytest.fixture
def env() -> Env:
    return Env()


async def test_challenge_offers_sha256_then_md5(env: Env) -> None:
    response = await env.registrar.handle(env.register(), SRC, "UDP")
    assert response.status == 401
    challenges = response.headers.get_all("WWW-Authenticate")
    assert [c.split("algorithm=")[1].split(",")[0] for c in challenges] == ["SHA-256", "MD5"]
    assert all(f'realm="{DOMAIN}"' in c and 'qop="auth"' in c for c in challenges)


async def test_register_creates_binding_and_reports_it(env: Env) -> None:
    response = await env.send(env.register("Expires: 600", "User-Agent: phone/1"))
    assert response.status == 200
    assert response.headers.get_all("Contact") == ["<sip:100@192.0.2.10:5062>;expires=600"]
    [binding] = await env.location.lookup(f"sip:100@{DOMAIN}", env.now)
    assert (binding.received, binding.transport, binding.owner_id, binding.user_agent) == (
        SRC, "UDP", "ext-100", "phone/1")
    assert binding.domain_id == "c1" and binding.expires_at == env.now + 600
    assert [e.event for e in env.events] == ["created"]


async def test_wrong_password_and_unknown_user_get_the_same_answer(env: Env) -> None:
    wrong = await env.send(env.register(), password="nope")
    unknown = await env.send(env.register(user="999", contact="<sip:999@192.0.2.10>"), user="999")
    for response in (wrong, unknown):
        assert (response.status, response.reason) == (401, "Unauthorized")
        assert len(response.headers.get_all("WWW-Authenticate")) == 2
        assert "stale" not in response.headers.get("WWW-Authenticate")
    assert env.events == []


async def test_repeated_failures_from_one_source_are_blocked(env: Env) -> None:
    for _ in range(4):
        await env.send(env.register(), password="nope")
    blocked = await env.registrar.handle(env.register(), SRC, "UDP")
    assert (blocked.status, blocked.reason) == (403, "Too Many Failed Authentications")
    assert blocked.headers.get("Retry-After") == "31"
    env.now += 31
    assert (await env.send(env.register())).status == 200


async def test_stale_nonce_is_rechallenged_with_stale_true(env: Env) -> None:
    request = env.register()
    first = await env.registrar.handle(request, SRC, "UDP")
    request.headers.add("Authorization", build_authorization(
        first.headers.get("WWW-Authenticate"), method="REGISTER", uri=str(request.uri),
        username="100", password="pw"))
    env.now += 301
    response = await env.registrar.handle(request, SRC, "UDP")
    assert response.status == 401 and "stale=true" in response.headers.get("WWW-Authenticate")


async def test_interval_too_brief(env: Env) -> None:
    response = await env.send(env.register("Expires: 10"))
    assert (response.status, response.headers.get("Min-Expires")) == (423, "60")


@pytest.mark.parametrize("expires", ["abc", "\u00b2", "\u0663\u0660"])  # superscript two, Arabic-Indic 30
async def test_an_expires_that_is_not_ascii_digits_is_a_400(env: Env, expires: str) -> None:
    response = await env.send(env.register(f"Expires: {expires}"))
    assert (response.status, response.reason) == (400, "Bad Expires")


async def test_contact_expires_param_wins_and_max_is_capped(env: Env) -> None:
    response = await env.send(env.register(
        "Expires: 100", contact="<sip:100@192.0.2.10:1>;expires=200, <sip:100@192.0.2.10:2>;expires=99999"))
    assert sorted(response.headers.get_all("Contact")) == [
        "<sip:100@192.0.2.10:1>;expires=200", "<sip:100@192.0.2.10:2>;expires=3600"]


async def test_several_contacts_refresh_and_expiry(env: Env) -> None:
    await env.send(env.register("Expires: 60", contact="<sip:100@192.0.2.10:1>"))
    await env.send(env.register("Expires: 120", contact="<sip:100@192.0.2.11:1>", call_id="cid-2"))
    aor = f"sip:100@{DOMAIN}"
    assert len(await env.location.lookup(aor, env.now)) == 2
    refreshed = await env.send(env.register("Expires: 300", contact="<sip:100@192.0.2.10:1>"))
    assert refreshed.status == 200 and env.events[-1].event == "refreshed"
    env.now += 130
    expired = await env.registrar.expire_bindings()
    assert [b.contact for b in expired] == ["sip:100@192.0.2.11:1"]
    assert env.events[-1].event == "expired"
    assert [b.contact for b in await env.location.lookup(aor, env.now)] == ["sip:100@192.0.2.10:1"]


async def test_start_runs_the_expiry_task_until_stop(env: Env) -> None:
    await env.send(env.register("Expires: 60"))
    env.now += 61
    expired = asyncio.Event()
    env.registrar.on_binding_change = lambda change: change.event == "expired" and expired.set()
    await env.registrar.start(expiry_interval_s=0.01)
    await env.registrar.start(expiry_interval_s=0.01)  # a second start does nothing
    await asyncio.wait_for(expired.wait(), 5)
    assert await env.location.lookup(f"sip:100@{DOMAIN}", env.now) == []
    await env.registrar.stop()
    await env.registrar.stop()  # idempotent
    await env.send(env.register("Expires: 60", call_id="cid-2"))
    env.now += 61
    await asyncio.sleep(0.05)  # stopped: the task no longer removes expired bindings
    assert [b.contact for b in await env.location.expire(env.now)] == ["sip:100@192.0.2.10:5062"]


async def test_out_of_order_refresh_is_refused(env: Env) -> None:
    await env.send(env.register())
    env.cseq = 0  # same Call-ID, lower CSeq
    response = await env.send(env.register())
    assert (response.status, response.reason) == (500, "Out Of Order Registration")


async def test_expires_zero_removes_one_and_wildcard_removes_all(env: Env) -> None:
    await env.send(env.register(contact="<sip:100@192.0.2.10:1>, <sip:100@192.0.2.10:2>"))
    response = await env.send(env.register(contact="<sip:100@192.0.2.10:1>;expires=0"))
    assert response.headers.get_all("Contact") == ["<sip:100@192.0.2.10:2>;expires=3600"]
    response = await env.send(env.register("Expires: 0", contact="*"))
    assert response.status == 200 and response.headers.get_all("Contact") == []
    assert await env.location.lookup(f"sip:100@{DOMAIN}", env.now) == []
    assert [e.event for e in env.events] == ["created", "created", "removed", "removed"]


async def test_wildcard_needs_expires_zero(env: Env) -> None:
    response = await env.send(env.register(contact="*"))
    assert (response.status, response.reason) == (400, "Invalid Wildcard")


async def test_query_without_contact_lists_bindings(env: Env) -> None:
    await env.send(env.register())
    response = await env.send(env.register(contact=None))
    assert response.headers.get_all("Contact") == ["<sip:100@192.0.2.10:5062>;expires=3600"]


async def test_unknown_registrar_domain(env: Env) -> None:
    response = await env.registrar.handle(env.register(host="voipbin.test"), SRC, "UDP")
    assert response.status == 404


async def test_username_must_match_aor(env: Env) -> None:
    env.creds.add("c1", "200", "pw2")
    response = await env.send(env.register(), password="pw2", user="200")
    assert (response.status, response.reason) == (403, "Username Does Not Match AOR")


async def test_legacy_user_agents_get_an_md5_only_challenge(env: Env) -> None:
    response = await env.registrar.handle(env.register("User-Agent: baresip v1.0.0"), SRC, "UDP")
    [challenge] = response.headers.get_all("WWW-Authenticate")
    assert "algorithm=MD5" in challenge
    assert (await env.send(env.register("User-Agent: baresip v1.0.0"))).status == 200
