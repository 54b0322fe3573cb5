"""Attacks on the SIP authentication path (issue 13 findings 2, 3, 7), driven without sockets:
digest replay (same and other source, nonce count, digest uri), single-use INVITE nonces, lockout per
(source, username) with backoff and per account, known bindings never locked out, the registrar
domains, and a hypothesis fuzz of every header the REGISTER and INVITE auth path reads."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voipbin.calls.inbound import Caller, InviteAuthenticator, Reject
from voipbin.sip.digest import build_authorization, pick_challenge
from voipbin.sip.digest_auth import FailureLimiter
from voipbin.sip.errors import SipParseError
from voipbin.sip.location import InMemoryCredentialStore, InMemoryLocationService
from voipbin.sip.message import Request, Response
from voipbin.sip.parser import parse_message, validate_request
from voipbin.sip.registrar import Registrar

DOMAIN = "c1.registrar.voipbin.test"
PHONE = ("127.0.0.2", 5062)
OTHER = ("127.0.0.3", 5062)
PASSWORD = "correct-horse-1"


class Env:
    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.creds = InMemoryCredentialStore()
        self.creds.add("c1", "100", PASSWORD, owner_id="ext-100")
        self.creds.add("c1", "200", PASSWORD, owner_id="ext-200")
        self.location = InMemoryLocationService()
        self.registrar = Registrar(
            sip_domain="voipbin.test", extra_domains=("voipbin.net",), credentials=self.creds,
            location=self.location, nonce_secret=b"k", clock=lambda: self.now,
            failure_limiter=FailureLimiter(max_failures=3, window_s=60, block_s=30, clock=lambda: self.now))
        self.cseq = 0

    def request(self, method: str = "REGISTER", *extra: str, user: str = "100", host: str = DOMAIN,
                contact: str = "<sip:100@127.0.0.2:5062>", uri: str | None = None) -> Request:
        self.cseq += 1
        uri = uri or (f"sip:{host}" if method == "REGISTER" else f"sip:200@{host}")
        to = f"<sip:{user}@{host}>" if method == "REGISTER" else f"<{uri}>"
        lines = [f"{method} {uri} SIP/2.0", f"Via: SIP/2.0/UDP 127.0.0.2:5062;branch=z9hG4bK{self.cseq}",
                 "Max-Forwards: 70", f"From: <sip:{user}@{host}>;tag=f1", f"To: {to}", "Call-ID: cid-1",
                 f"CSeq: {self.cseq} {method}", f"Contact: {contact}", *extra, "Content-Length: 0"]
        msg = parse_message(("\r\n".join(lines) + "\r\n\r\n").encode())
        assert isinstance(msg, Request)
        return msg

    async def authorized(self, request: Request, source: tuple[str, int] = PHONE, *, user: str = "100",
                         password: str = PASSWORD, nc: int = 1) -> Request:
        """``request`` with the answer to a fresh challenge for ``source`` (CSeq + 1)."""
        first = await self.registrar.handle(request, source, "UDP")
        assert first.status == 401
        challenge = pick_challenge(first.headers.get_all("WWW-Authenticate"))
        request.headers.add("Authorization", build_authorization(
            challenge, method=request.method, uri=str(request.uri), username=user, password=password, nc=nc))
        self.cseq += 1
        request.headers.set("CSeq", f"{self.cseq} {request.method}")
        return request

    async def guess(self, source: tuple[str, int], times: int) -> None:
        """``times`` wrong-password attempts from ``source`` (stops early once it is blocked)."""
        for _ in range(times):
            request = self.request()
            first = await self.registrar.handle(request, source, "UDP")
            if first.status != 401:
                return
            request.headers.add("Authorization", build_authorization(
                pick_challenge(first.headers.get_all("WWW-Authenticate")), method="REGISTER",
                uri=str(request.uri), username="100", password="wrong-guess"))
            await self.registrar.handle(request, source, "UDP")

    async def bindings(self) -> list[tuple[str, int]]:
        return [b.received for b in await self.location.lookup(f"sip:100@{DOMAIN}", self.now)]


@dataclass
class FakeIncoming:
    request: Request
    source: tuple[str, int]


def challenge_of(response: Response) -> str:
    return response.headers.get("WWW-Authenticate") or ""


# ------------------------------------------------------------------ finding 3: replay


async def test_captured_register_replayed_from_another_address_is_refused() -> None:
    env = Env()
    captured = await env.authorized(env.request())
    assert (await env.registrar.handle(captured, PHONE, "UDP")).status == 200
    replay = await env.registrar.handle(captured, OTHER, "UDP")
    assert replay.status == 401
    assert await env.bindings() == [PHONE]


async def test_captured_wildcard_removal_replayed_is_refused() -> None:
    env = Env()
    assert (await env.registrar.handle(await env.authorized(env.request()), PHONE, "UDP")).status == 200
    removal = await env.authorized(env.request("REGISTER", "Expires: 0", contact="*"))
    replayed = Request(removal.headers.copy(), b"", method="REGISTER", uri=removal.uri)
    # the attacker replays the phone's own removal before the phone sends it, from elsewhere
    assert (await env.registrar.handle(replayed, OTHER, "UDP")).status == 401
    assert await env.bindings() == [PHONE]


async def test_repeated_or_lower_nonce_count_is_stale() -> None:
    env = Env()
    request = await env.authorized(env.request(), nc=5)
    assert (await env.registrar.handle(request, PHONE, "UDP")).status == 200
    again = await env.registrar.handle(request, PHONE, "UDP")  # same nc from the same source
    assert again.status == 401 and "stale=true" in challenge_of(again)
    value = request.headers.get("Authorization").replace("nc=00000005", "nc=00000003")
    request.headers.set("Authorization", value)
    lower = await env.registrar.handle(request, PHONE, "UDP")
    assert lower.status == 401 and "stale=true" in challenge_of(lower)


async def test_nonce_reused_with_a_higher_count_is_accepted() -> None:
    env = Env()
    request = await env.authorized(env.request())
    assert (await env.registrar.handle(request, PHONE, "UDP")).status == 200
    nonce_challenge = f'Digest realm="{DOMAIN}", nonce="{_param(request, "nonce")}", algorithm=SHA-256, qop="auth"'
    request.headers.set("Authorization", build_authorization(
        nonce_challenge, method="REGISTER", uri=str(request.uri), username="100", password=PASSWORD, nc=2))
    env.cseq += 1
    request.headers.set("CSeq", f"{env.cseq} REGISTER")
    assert (await env.registrar.handle(request, PHONE, "UDP")).status == 200


async def test_digest_uri_must_equal_the_request_uri() -> None:
    env = Env()
    request = env.request()
    first = await env.registrar.handle(request, PHONE, "UDP")
    request.headers.add("Authorization", build_authorization(
        pick_challenge(first.headers.get_all("WWW-Authenticate")), method="REGISTER",
        uri="sip:elsewhere.example", username="100", password=PASSWORD))
    assert (await env.registrar.handle(request, PHONE, "UDP")).status == 401
    assert await env.bindings() == []


async def test_answer_without_qop_auth_is_challenged_again() -> None:
    env = Env()
    request = env.request()
    first = await env.registrar.handle(request, PHONE, "UDP")
    legacy = first.headers.get("WWW-Authenticate").replace(', qop="auth"', "")
    request.headers.add("Authorization", build_authorization(
        legacy, method="REGISTER", uri=str(request.uri), username="100", password=PASSWORD))
    assert (await env.registrar.handle(request, PHONE, "UDP")).status == 401


async def test_nonces_are_short_lived() -> None:
    env = Env()
    request = await env.authorized(env.request())
    env.now += env.registrar.verifier.nonces.ttl_s + 1
    response = await env.registrar.handle(request, PHONE, "UDP")
    assert env.registrar.verifier.nonces.ttl_s <= 60
    assert response.status == 401 and "stale=true" in challenge_of(response)


async def test_invite_credentials_are_single_use_and_bound_to_the_source() -> None:
    env = Env()
    auth = InviteAuthenticator(env.registrar.verifier, env.registrar)
    invite = env.request("INVITE")
    first = await auth.check(FakeIncoming(invite, PHONE))
    assert isinstance(first, Reject) and first.status == 407
    challenge = pick_challenge([v for n, v in first.headers if n == "Proxy-Authenticate"])
    invite.headers.add("Proxy-Authorization", build_authorization(
        challenge, method="INVITE", uri=str(invite.uri), username="100", password=PASSWORD))
    assert await auth.check(FakeIncoming(invite, PHONE)) == Caller("c1", "ext-100")
    for source in (PHONE, OTHER):  # the captured credential places no second call
        replay = await auth.check(FakeIncoming(invite, source))
        assert isinstance(replay, Reject) and replay.status == 407


# ------------------------------------------------------------------ finding 7: lockout


async def test_failures_block_one_source_and_username_with_backoff() -> None:
    env = Env()
    attacker = ("127.0.0.9", 40000)
    await env.guess(attacker, 4)
    blocked = await env.registrar.handle(env.request(), attacker, "UDP")
    assert (blocked.status, blocked.headers.get("Retry-After")) == (403, "31")
    # another username from the same address, and the same username elsewhere, are not blocked
    assert (await env.registrar.handle(env.request(user="200"), attacker, "UDP")).status == 401
    assert (await env.registrar.handle(await env.authorized(env.request()), PHONE, "UDP")).status == 200
    env.now += 31
    await env.guess(attacker, 4)
    again = await env.registrar.handle(env.request(), attacker, "UDP")
    assert (again.status, again.headers.get("Retry-After")) == (403, "61")  # doubled


async def test_registered_phone_is_never_locked_out_by_someone_elses_failures() -> None:
    env = Env()
    assert (await env.registrar.handle(await env.authorized(env.request()), PHONE, "UDP")).status == 200
    same_nat = (PHONE[0], 40001)  # another device behind the phone's NAT guessing its password
    await env.guess(same_nat, 60)
    assert (await env.registrar.handle(env.request(), same_nat, "UDP")).status == 403
    refresh = await env.authorized(env.request())  # the phone, from its binding's address
    assert (await env.registrar.handle(refresh, PHONE, "UDP")).status == 200


async def test_per_account_limit_across_sources() -> None:
    env = Env()
    for i in range(60):
        await env.guess((f"127.0.1.{i}", 5060), 1)
    fresh = await env.registrar.handle(env.request(), ("127.0.2.1", 5060), "UDP")
    assert (fresh.status, fresh.reason) == (403, "Too Many Failed Authentications")
    assert (await env.registrar.handle(env.request(user="200"), ("127.0.2.1", 5060), "UDP")).status == 401


# ------------------------------------------------------------------ issue 12: registrar domains


async def test_register_to_each_configured_domain_lands_on_one_aor() -> None:
    env = Env()
    for host in (DOMAIN, "c1.registrar.voipbin.net"):
        request = await env.authorized(env.request(host=host, contact=f"<sip:100@127.0.0.2:{len(host)}>"))
        response = await env.registrar.handle(request, PHONE, "UDP")
        assert response.status == 200, host
    assert len(await env.bindings()) == 2
    assert (await env.registrar.handle(env.request(host="c1.registrar.example.org"), PHONE, "UDP")).status == 404


# ------------------------------------------------------------------ finding 2: malformed bytes

SAFE = {
    "ruri_host": b"c1.registrar.voipbin.test", "to_user": b"100", "to_host": b"c1.registrar.voipbin.test",
    "from": b"<sip:100@c1.registrar.voipbin.test>;tag=f1", "user_agent": b"phone/1", "contact": b"<sip:100@127.0.0.2>",
    "call_id": b"cid-1", "cseq_num": b"1", "expires": b"600",
    "auth_username": b"100", "auth_realm": b"c1.registrar.voipbin.test", "auth_nonce": b"bm9uY2U",
    "auth_uri": b"sip:c1.registrar.voipbin.test", "auth_response": b"0" * 32, "auth_nc": b"00000001",
    "auth_cnonce": b"abc", "auth_qop": b"auth", "auth_algorithm": b"MD5",
}


def fuzzed(method: str, field: str, value: bytes) -> bytes:
    f = {**SAFE, field: value}
    auth = (b'Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", nc=%s, cnonce="%s", '
            b"qop=%s, algorithm=%s" % (f["auth_username"], f["auth_realm"], f["auth_nonce"], f["auth_uri"],
                                      f["auth_response"], f["auth_nc"], f["auth_cnonce"], f["auth_qop"],
                                      f["auth_algorithm"]))
    ruri = b"sip:" + f["ruri_host"] if method == "REGISTER" else b"sip:200@" + f["ruri_host"]
    header = b"Authorization" if method == "REGISTER" else b"Proxy-Authorization"
    lines = [b"%s %s SIP/2.0" % (method.encode(), ruri), b"Via: SIP/2.0/UDP 127.0.0.2:5062;branch=z9hG4bKf",
             b"Max-Forwards: 70", b"From: " + f["from"], b"To: <sip:%s@%s>" % (f["to_user"], f["to_host"]),
             b"Call-ID: " + f["call_id"], b"CSeq: %s %s" % (f["cseq_num"], method.encode()),
             b"Contact: " + f["contact"], b"User-Agent: " + f["user_agent"], b"Expires: " + f["expires"],
             header + b": " + auth, b"Content-Length: 0"]
    return b"\r\n".join(lines) + b"\r\n\r\n"


FUZZ_BYTES = st.one_of(
    st.binary(max_size=40).filter(lambda b: b"\r" not in b and b"\n" not in b),
    st.text(max_size=20).map(lambda t: t.encode("utf-8", "surrogatepass")).filter(
        lambda b: b"\r" not in b and b"\n" not in b),
    st.sampled_from([b"\xff\xfe", b"c1.registrar.voipbin.test\xc3", b"\xe9t\xe9", "ü".encode(), b"\x00"]),
)


async def _answer(env: Env, method: str, data: bytes, gate: bool) -> int | None:
    try:
        message = parse_message(data)
    except SipParseError:
        return None  # dropped
    if not isinstance(message, Request):
        return None
    problem = validate_request(message)
    if problem is not None and gate:
        return problem[0]
    message.defects.clear()  # ungated: the registrar and authenticator must stand on their own
    if method == "REGISTER":
        return (await env.registrar.handle(message, PHONE, "UDP")).status
    verdict = await InviteAuthenticator(env.registrar.verifier, env.registrar).check(FakeIncoming(message, PHONE))
    return verdict.status if isinstance(verdict, Reject) else 200


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(method=st.sampled_from(["REGISTER", "INVITE"]), field=st.sampled_from(sorted(SAFE)), value=FUZZ_BYTES,
       gate=st.booleans())
def test_fuzz_auth_path_headers_never_raise(method: str, field: str, value: bytes, gate: bool) -> None:
    env = Env()
    status = asyncio.run(_answer(env, method, fuzzed(method, field, value), gate))
    assert status is None or status in (400, 401, 403, 404, 407, 416, 423, 505)


async def test_non_utf8_registrar_host_is_a_400_naming_it() -> None:
    data = fuzzed("REGISTER", "to_host", b"c1.registrar.voipbin.test\xff")
    message = parse_message(data)
    assert isinstance(message, Request)
    assert validate_request(message) == (400, "Invalid UTF-8")
    env = Env()
    message.defects.clear()  # a caller that skipped validation still gets a 400, not an exception
    assert (await env.registrar.handle(message, PHONE, "UDP")).status == 400


def _param(request: Request, name: str) -> str:
    value = request.headers.get("Authorization")
    return value.split(f'{name}="', 1)[1].split('"', 1)[0]
