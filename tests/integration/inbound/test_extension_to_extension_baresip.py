"""Two real softphones (baresip) registered as extensions of one customer call each other through the
platform: the caller's INVITE is digest-challenged (407), the callee rings and auto-answers, each
phone hears the other's tone (relayed by the bridge), and hanging up either side ends both calls."""

from __future__ import annotations

import asyncio
import subprocess
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import pytest_asyncio

from voipbin.demo.baresip import BaresipPhone

pytestmark = [pytest.mark.sip_peer, pytest.mark.slow]

ALICE_HZ, BOB_HZ = 440, 1000


def _tone(path: Path, hz: int, seconds: int = 60) -> Path:
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(path), "synth", str(seconds), "sine",
                    str(hz), "vol", "0.5"], check=True)
    return path


def _dominant_hz(path: Path) -> tuple[float, float]:
    """(dominant frequency, RMS) of a recording, skipping its first half second."""
    with wave.open(str(path)) as w:
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
    pcm = pcm[rate // 2:]
    if len(pcm) < rate // 2:
        return 0.0, 0.0
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
    return float(np.argmax(spectrum) * rate / len(pcm)), float(np.sqrt(np.mean(pcm**2)))


async def _phone(client: httpx.AsyncClient, token: str, runtime: Any, tmp: Path, name: str, ext: str,
                 hz: int, auto_answer: bool) -> BaresipPhone:
    r = await client.post("/v1.0/extensions", params={"token": token}, json={
        "name": name, "detail": f"{name}'s phone", "extension": ext, "password": f"{name}-secret-pw"})
    assert r.status_code == 200, r.text
    workdir = tmp / name
    workdir.mkdir()
    phone = BaresipPhone(workdir, user=ext, domain=f"{runtime.seed.customer_id}.registrar.voipbin.test",
                         password=f"{name}-secret-pw", proxy=("127.0.0.1", runtime.sip.port),
                         audio_file=_tone(workdir / "say.wav", hz), auto_answer=auto_answer)
    await phone.start()
    await phone.wait_event("REGISTER_OK")
    return phone


@pytest_asyncio.fixture
async def phones(client: httpx.AsyncClient, admin_token: str, runtime: Any,
                 tmp_path: Path) -> AsyncIterator[tuple[BaresipPhone, BaresipPhone]]:
    alice = await _phone(client, admin_token, runtime, tmp_path, "alice", "2001", ALICE_HZ, auto_answer=False)
    bob = await _phone(client, admin_token, runtime, tmp_path, "bob", "2002", BOB_HZ, auto_answer=True)
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

    alice_heard, alice_rms = _dominant_hz(alice.recordings("dec")[-1])
    bob_heard, bob_rms = _dominant_hz(bob.recordings("dec")[-1])
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
