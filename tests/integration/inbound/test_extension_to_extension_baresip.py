"""Two real softphones (baresip) registered as extensions of one customer call each other through the
platform: the caller's INVITE is digest-challenged (407), the callee rings and auto-answers, each
phone hears the other's tone (relayed by the bridge), and hanging up either side ends both calls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from inbound_support import baresip_extension, dominant_hz, heard, tone_wav
from voipbin.demo.baresip import BaresipPhone

pytestmark = [pytest.mark.sip_peer, pytest.mark.slow]

ALICE_HZ, BOB_HZ = 440, 1000


def _heard_hz(phone: BaresipPhone) -> tuple[float, float]:
    """(dominant frequency, RMS) of what ``phone`` heard in its last call, skipping the first half second."""
    pcm, rate = heard(phone.recordings("dec")[-1])
    return dominant_hz(pcm[rate:], rate)  # rate bytes of PCM16: half a second


@pytest_asyncio.fixture
async def phones(client: httpx.AsyncClient, admin_token: str, runtime: Any,
                 tmp_path: Path) -> AsyncIterator[tuple[BaresipPhone, BaresipPhone]]:
    alice = await baresip_extension(client, admin_token, runtime, tmp_path / "alice", "alice", "2001",
                                    tone_wav(tmp_path / "alice.wav", ALICE_HZ), auto_answer=False)
    bob = await baresip_extension(client, admin_token, runtime, tmp_path / "bob", "bob", "2002",
                                  tone_wav(tmp_path / "bob.wav", BOB_HZ), auto_answer=True)
    try:
        yield alice, bob
    finally:
        await alice.stop()
        await bob.stop()


async def _call_and_talk(alice: BaresipPhone, bob: BaresipPhone, runtime: Any, events: Any,
                         dialled: str) -> tuple[dict[str, Any], dict[str, Any]]:
    await alice.command("dial", f"sip:{dialled}@{runtime.seed.customer_id}.registrar.voipbin.test")
    inbound = (await events.next("call_created", where=lambda e: e.data["direction"] == "incoming")).data
    outbound = (await events.next("call_created", where=lambda e: e.data["direction"] == "outgoing")).data
    assert outbound["master_call_id"] == inbound["id"]
    await bob.wait_event("CALL_ESTABLISHED")
    await alice.wait_event("CALL_ESTABLISHED")
    await events.next("call_progressing", inbound["id"])
    await asyncio.sleep(2.5)  # let each side hear the other for a while (what is measured is audio over time)
    return inbound, outbound


async def test_alice_calls_bob_both_hear_each_other_alice_hangs_up(
        client: httpx.AsyncClient, admin_token: str, runtime: Any, events: Any, spec: Any,
        phones: tuple[BaresipPhone, BaresipPhone]) -> None:
    alice, bob = phones
    inbound, outbound = await _call_and_talk(alice, bob, runtime, events, "2002")
    assert inbound["source"]["type"] == "extension" and inbound["source"]["target_name"] == "alice"
    assert inbound["destination"]["target_name"] == "bob"
    await alice.hangup()
    await alice.wait_event("CALL_CLOSED")
    await bob.wait_event("CALL_CLOSED")
    first = await events.next("call_hangup", inbound["id"])
    second = await events.next("call_hangup", outbound["id"])
    assert (first.data["hangup_by"], first.data["hangup_reason"]) == ("remote", "normal")
    assert (second.data["hangup_by"], second.data["hangup_reason"]) == ("local", "normal")
    master = (await client.get(f"/v1.0/calls/{inbound['id']}", params={"token": admin_token})).json()
    spec.validate("CallManagerCall", master)
    assert master["chained_call_ids"] == [outbound["id"]]

    alice_heard, alice_rms = _heard_hz(alice)
    bob_heard, bob_rms = _heard_hz(bob)
    assert alice_rms > 300 and bob_rms > 300, (alice_rms, bob_rms)
    assert abs(alice_heard - BOB_HZ) < 20, alice_heard
    assert abs(bob_heard - ALICE_HZ) < 20, bob_heard


async def test_bob_hangs_up_first_by_name(client: httpx.AsyncClient, admin_token: str, runtime: Any, events: Any,
                                          phones: tuple[BaresipPhone, BaresipPhone]) -> None:
    alice, bob = phones
    inbound, outbound = await _call_and_talk(alice, bob, runtime, events, "bob")  # dialled by extension name
    await bob.hangup()
    await bob.wait_event("CALL_CLOSED")
    await alice.wait_event("CALL_CLOSED")
    chained = await events.next("call_hangup", outbound["id"])
    master = await events.next("call_hangup", inbound["id"])
    assert (chained.data["hangup_by"], chained.data["hangup_reason"]) == ("remote", "normal")
    assert (master.data["hangup_by"], master.data["hangup_reason"]) == ("local", "normal")
