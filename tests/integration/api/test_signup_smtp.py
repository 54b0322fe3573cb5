"""Headless signup end to end against a real SMTP server (aiosmtpd) started by the test."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from email import message_from_bytes

import httpx
import pytest
import pytest_asyncio
from aiosmtpd.controller import Controller

from tests_support.net import free_port
from voipbin.config import Settings


class Inbox:
    """aiosmtpd handler keeping every received message; ``next()`` awaits the next one."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[tuple[list[str], bytes]] = asyncio.Queue()

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]  # noqa: N802
        self.loop.call_soon_threadsafe(self.queue.put_nowait, (list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"

    async def next(self) -> tuple[list[str], str, str]:
        rcpt, raw = await asyncio.wait_for(self.queue.get(), 10)
        msg = message_from_bytes(raw)
        return rcpt, str(msg["Subject"]), msg.get_payload(decode=True).decode()  # type: ignore[union-attr]


@pytest_asyncio.fixture
async def inbox() -> AsyncIterator[tuple[Inbox, int]]:
    handler = Inbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@pytest.fixture
def settings(sqlite_url: str, inbox: tuple[Inbox, int]) -> Iterator[Settings]:
    yield Settings(database_url=sqlite_url, smtp_url=f"smtp://127.0.0.1:{inbox[1]}", sip_port=0,
                   _env_file=None)  # type: ignore[call-arg]


def _code(body: str) -> str:
    match = re.search(r"\b(\d{6})\b", body)
    assert match, body
    return match.group(1)


async def test_signup_mails_an_otp_that_completes_signup(client: httpx.AsyncClient, inbox, spec) -> None:  # type: ignore[no-untyped-def]
    box, _ = inbox
    r = await client.post("/auth/signup", json={"email": "New.User@Example.com", "name": "Your Company Name"})
    assert r.status_code == 200
    temp_token = r.json()["temp_token"]
    assert re.fullmatch(r"[0-9a-f]{32}", temp_token)
    rcpt, subject, body = await box.next()
    assert rcpt == ["new.user@example.com"] and "verification" in subject.lower()
    r = await client.post("/auth/complete-signup", json={"temp_token": temp_token, "code": _code(body)})
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["accesskey"]["token"].startswith("vb_")
    me = await client.get("/v1.0/customer", params={"accesskey": done["accesskey"]["token"]})
    assert me.status_code == 200
    spec.validate("CustomerManagerCustomer", me.json())
    assert me.json()["id"] == done["customer_id"] and me.json()["name"] == "Your Company Name"
    assert me.json()["email_verified"] is True
    # the temp_token is spent
    again = await client.post("/auth/complete-signup", json={"temp_token": temp_token, "code": _code(body)})
    assert again.status_code == 400
    # a registered address gets the same 200, an empty temp_token and no mail
    r = await client.post("/auth/signup", json={"email": "new.user@example.com"})
    assert r.status_code == 200 and r.json() == {"temp_token": ""}
    assert box.queue.empty()


async def test_wrong_code_then_lockout_after_five_attempts(client: httpx.AsyncClient, inbox) -> None:  # type: ignore[no-untyped-def]
    box, _ = inbox
    temp_token = (await client.post("/auth/signup", json={"email": "a@example.com"})).json()["temp_token"]
    code = _code((await box.next())[2])
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        r = await client.post("/auth/complete-signup", json={"temp_token": temp_token, "code": wrong})
        assert r.status_code == 400 and "code" in r.json()["error"]["message"]
    r = await client.post("/auth/complete-signup", json={"temp_token": temp_token, "code": code})
    assert r.status_code == 429
    assert r.json()["error"]["status"] == "RESOURCE_EXHAUSTED" and int(r.headers["retry-after"]) > 0


async def test_expired_code_is_400(client: httpx.AsyncClient, inbox, runtime) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from voipbin.common.clock import utcnow
    from voipbin.store.models import Signup

    box, _ = inbox
    temp_token = (await client.post("/auth/signup", json={"email": "late@example.com"})).json()["temp_token"]
    code = _code((await box.next())[2])
    async with runtime.sessions() as session, session.begin():
        (await session.get(Signup, temp_token)).tm_expire = utcnow() - timedelta(seconds=1)
    r = await client.post("/auth/complete-signup", json={"temp_token": temp_token, "code": code})
    assert r.status_code == 400 and "expired" in r.json()["error"]["message"]


async def test_signup_input_errors(client: httpx.AsyncClient, inbox) -> None:  # type: ignore[no-untyped-def]
    box, _ = inbox
    r = await client.post("/auth/signup", json={"name": "no email"})
    assert r.status_code == 400 and "email" in r.json()["error"]["message"]
    r = await client.post("/auth/signup", json={"email": "x@example.com", "accepted_tos": False})
    assert r.status_code == 400 and "accepted_tos" in r.json()["error"]["message"]
    r = await client.post("/auth/signup", json={"email": "not-an-address"})
    assert r.status_code == 200 and r.json() == {"temp_token": ""}
    r = await client.post("/auth/complete-signup", json={"temp_token": "f" * 32})
    assert r.status_code == 400 and r.json()["error"]["message"] == "code is required"
    r = await client.post("/auth/complete-signup", json={"temp_token": "f" * 32, "code": "123456"})
    assert r.status_code == 400 and "temp_token" in r.json()["error"]["message"]
    assert box.queue.empty()
