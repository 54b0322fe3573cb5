"""Hold, mute and music on hold over the API on an answered call (scripted leg, real RTP): what the
phone hears follows each change, the call record's ``mute_direction`` too, and bad requests are refused."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path
from typing import Any

import httpx
import numpy as np

TONE_HZ = 700


def _tone_wav(path: Path, seconds: int = 20) -> Path:
    t = np.arange(8000 * seconds) / 8000
    pcm = (np.sin(2 * np.pi * TONE_HZ * t) * 12000).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(pcm.tobytes())
    return path


async def _heard(leg: Any, seconds: float = 0.4, settle: float = 0.2) -> tuple[float, float]:
    """(RMS, dominant Hz) of what the phone receives over ``seconds``, after ``settle`` s of in-flight audio."""
    async def grown(by: int) -> bytes:
        start = len(leg.phone_audio)
        while len(leg.phone_audio) < start + by:
            await asyncio.sleep(0.02)  # audio arrives over time: wait for the next RTP packets
        return bytes(leg.phone_audio[start:start + by])

    await asyncio.wait_for(grown(int(settle * 16000)), 5)
    pcm = np.frombuffer(await asyncio.wait_for(grown(int(seconds * 16000)), 5), dtype="<i2").astype(np.float64)
    rms = float(np.sqrt(np.mean(pcm**2)))
    hz = float(np.argmax(np.abs(np.fft.rfft(pcm))) * 8000 / len(pcm)) if rms > 0 else 0.0
    return rms, hz


async def _answered_call(client: httpx.AsyncClient, token: str, runtime: Any, originator: Any, events: Any,
                         tmp_path: Path) -> tuple[str, Any]:
    wav = _tone_wav(tmp_path / "tone.wav")
    r = await client.post("/v1.0/calls", params={"token": token}, json={
        "source": {"type": "tel", "target": runtime.seed.number},
        "destinations": [{"type": "extension", "target_name": "quickstart-phone"}],
        "actions": [{"type": "play", "option": {"stream_urls": [f"file://{wav}"]}}]})
    assert r.status_code == 200, r.text
    call_id = r.json()["calls"][0]["id"]
    leg = await originator.next_leg()
    await leg.answer()
    await events.next("call_progressing", call_id)
    return call_id, leg


async def test_mute_hold_and_moh_change_what_the_phone_hears(client: httpx.AsyncClient, admin_token: str,
                                                              runtime: Any, phone: dict[str, Any], originator: Any,
                                                              events: Any, spec: Any, tmp_path: Path) -> None:
    call_id, leg = await _answered_call(client, admin_token, runtime, originator, events, tmp_path)
    params = {"token": admin_token}
    rms, hz = await _heard(leg)
    assert rms > 3000 and abs(hz - TONE_HZ) < 30, (rms, hz)

    r = await client.post(f"/v1.0/calls/{call_id}/mute", params=params, json={"direction": "out"})
    assert r.status_code == 200, r.text
    spec.validate("CallManagerCall", r.json())
    assert r.json()["mute_direction"] == "out"
    while (await events.next("call_updated", call_id)).data["mute_direction"] != "out":
        pass  # earlier updates (the flow's action) come first
    assert (await _heard(leg))[0] < 50
    r = await client.post(f"/v1.0/calls/{call_id}/mute", params=params, json={"direction": "in"})
    assert r.json()["mute_direction"] == "both"
    r = await client.request("DELETE", f"/v1.0/calls/{call_id}/mute", params=params, json={"direction": "out"})
    assert r.status_code == 200 and r.json()["mute_direction"] == "in"
    assert (await _heard(leg))[0] > 3000  # "in" mute does not silence what the phone hears
    r = await client.delete(f"/v1.0/calls/{call_id}/mute", params=params)
    assert r.json()["mute_direction"] == ""

    assert (await client.post(f"/v1.0/calls/{call_id}/hold", params=params)).status_code == 200
    assert (await _heard(leg))[0] < 50
    assert (await client.post(f"/v1.0/calls/{call_id}/moh", params=params)).status_code == 200
    rms, hz = await _heard(leg, seconds=1.6)
    assert rms > 300 and abs(hz - TONE_HZ) > 30, (rms, hz)  # music, not the call's own audio
    assert (await client.delete(f"/v1.0/calls/{call_id}/moh", params=params)).status_code == 200
    assert (await _heard(leg))[0] < 50  # still held
    assert (await client.delete(f"/v1.0/calls/{call_id}/hold", params=params)).status_code == 200
    rms, hz = await _heard(leg)
    assert rms > 3000 and abs(hz - TONE_HZ) < 30

    await client.post(f"/v1.0/calls/{call_id}/hangup", params=params)
    await events.next("call_hangup", call_id)
    r = await client.post(f"/v1.0/calls/{call_id}/hold", params=params)
    assert r.status_code == 409, r.text


async def test_bad_mute_direction_and_unanswered_call(client: httpx.AsyncClient, admin_token: str, runtime: Any,
                                                      phone: dict[str, Any], originator: Any, events: Any,
                                                      tmp_path: Path) -> None:
    params = {"token": admin_token}
    r = await client.post("/v1.0/calls", params=params, json={
        "source": {"type": "tel", "target": runtime.seed.number},
        "destinations": [{"type": "extension", "target_name": "quickstart-phone"}],
        "actions": [{"type": "sleep", "option": {"duration": 5000}}]})
    call_id = r.json()["calls"][0]["id"]
    leg = await originator.next_leg()
    r = await client.post(f"/v1.0/calls/{call_id}/moh", params=params)
    assert r.status_code == 409 and r.json()["error"]["status"] == "FAILED_PRECONDITION"
    await leg.answer()
    await events.next("call_progressing", call_id)
    r = await client.post(f"/v1.0/calls/{call_id}/mute", params=params, json={"direction": "sideways"})
    assert r.status_code == 400 and "direction" in r.json()["error"]["message"]
    r = await client.post("/v1.0/calls/00000000-0000-4000-8000-000000000000/hold", params=params)
    assert r.status_code == 404
