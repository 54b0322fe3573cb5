"""What the sandbox simulates (issue 12): the virtual PSTN, offline speech providers, empty flows,
the language checks and the HTTPS certificate, over the real HTTP API of an in-process sandbox."""

from __future__ import annotations

import asyncio
import datetime
import stat
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cryptography import x509

from voipbin.sandbox.speech import load_utterances
from voipbin.sandbox.tls import ensure_certificate

pytestmark = [pytest.mark.sip_peer, pytest.mark.slow]

NIL = "00000000-0000-0000-0000-000000000000"
ELEVENLABS_VOICE = "21m00Tcm4TlvDq8ikWAM"
SAY = "Testing the speaking API, one two three."


async def _until(check: Any, timeout: float, what: str) -> Any:
    """Poll the API (no event to await over plain HTTP) until ``check()`` returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


def _ts(value: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_a_tel_call_reaches_a_virtual_phone(sandbox: Any, api: Any) -> None:
    # seed 002 step 1 as written, but from the sandbox's own number
    r = await api.post("/v1.0/calls", json={"source": {"type": "tel", "target": sandbox.seed.number},
                                            "destinations": [{"type": "tel", "target": "+15559876543"}],
                                            "flow_id": NIL})
    assert r.status_code == 200, r.text
    body = r.json()
    call_id = body["groupcalls"][0]["call_ids"][0]
    assert [c["id"] for c in body["calls"]] == [call_id]

    async def progressing() -> Any:
        call = (await api.get(f"/v1.0/calls/{call_id}")).json()
        return call if call["status"] == "progressing" else None
    call = await _until(progressing, 10, "the virtual phone to answer")
    assert 0.8 <= (_ts(call["tm_progressing"]) - _ts(call["tm_ringing"])).total_seconds() <= 3  # rings ~1 s

    # the phone speaks real human speech: an `in` transcript of a LibriVox line
    r = await api.post("/v1.0/transcribes", json={"reference_type": "call", "reference_id": call_id,
                                                  "language": "en-US", "direction": "in"})
    assert r.status_code == 200, r.text
    transcribe_id = r.json()["id"]

    async def heard() -> Any:
        result = (await api.get("/v1.0/transcripts", params={"transcribe_id": transcribe_id})).json()["result"]
        return [t for t in result if t["direction"] == "in" and t["message"].strip()]
    transcripts = await _until(heard, 30, "an in transcript of the phone's speech")
    phone = sandbox.virtual_pstn.phones[-1]
    spoken = [u.text for u in load_utterances() if u.name in phone.spoken]
    words = set(" ".join(spoken).split())
    assert len(words & set(transcripts[0]["message"].lower().strip(".,!?").replace(",", "").split())) >= 2, (
        transcripts, spoken)

    # offline provider: elevenlabs without a key, any voice_id; the speaking keeps both
    r = await api.post("/v1.0/speakings", json={"reference_type": "call", "reference_id": call_id,
                                                "language": "en-US", "provider": "elevenlabs",
                                                "voice_id": ELEVENLABS_VOICE, "direction": "out"})
    assert r.status_code == 201, r.text
    speaking = r.json()
    assert (speaking["provider"], speaking["voice_id"]) == ("elevenlabs", ELEVENLABS_VOICE)

    async def active() -> Any:
        return (await api.get(f"/v1.0/speakings/{speaking['id']}")).json()["status"] == "active"
    await _until(active, 15, "the speaking to turn active")
    assert (await api.post(f"/v1.0/speakings/{speaking['id']}/say", json={"text": SAY})).status_code == 200

    # languages no configured engine serves: 400 naming the field, on this live call
    r = await api.post("/v1.0/transcribes", json={"reference_type": "call", "reference_id": call_id,
                                                  "language": "zu-ZA", "direction": "both"})
    assert r.status_code == 400 and "language" in r.json()["error"]["message"], r.text
    r = await api.post("/v1.0/speakings", json={"reference_type": "call", "reference_id": call_id,
                                                "language": "zu-ZA"})
    assert r.status_code == 400 and "language" in r.json()["error"]["message"], r.text

    await asyncio.sleep(4)  # the speaking plays to the phone (wall-clock audio)
    assert (await api.get(f"/v1.0/calls/{call_id}")).json()["status"] == "progressing"  # an empty flow stays up
    assert (await api.delete(f"/v1.0/calls/{call_id}")).status_code == 200
    await asyncio.wait_for(phone.ended.wait(), 10)
    await _until(lambda: _recording_closed(phone.recording), 5, "the recording to be closed")
    with wave.open(str(phone.recording)) as w:
        assert w.getframerate() == 8000
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    assert len(samples) > 8000 * 5  # it recorded the whole call
    loud = np.sqrt(np.mean(samples.astype(np.float64) ** 2))
    assert loud > 100, f"the phone heard silence (RMS {loud:.0f}): the speaking did not reach it"


async def _recording_closed(path: Path) -> bool:
    try:
        with wave.open(str(path)) as w:
            return w.getnframes() > 0
    except (OSError, EOFError, wave.Error):
        return False


async def test_flows_in_a_language_no_engine_serves_are_400s(api: Any, sandbox: Any) -> None:
    source = {"type": "tel", "target": sandbox.seed.number}
    dest = [{"type": "tel", "target": "+15559876543"}]
    cases = [
        ([{"type": "transcribe_start", "option": {"language": "zu-ZA"}}], "actions[0].option.language"),
        ([{"type": "answer"}, {"type": "talk", "option": {"text": "Sawubona", "language": "zu-ZA"}}],
         "actions[1].option.language"),
        ([{"type": "talk", "option": {"text": "hi", "language": "en-US", "provider": "piper",
                                      "voice_id": "nobody"}}], "actions[0].option.voice_id"),
    ]
    for actions, field in cases:
        for path, body in (("/v1.0/calls", {"source": source, "destinations": dest, "actions": actions}),
                           ("/v1.0/flows", {"name": "f", "detail": "d", "actions": actions})):
            r = await api.post(path, json=body)
            assert r.status_code == 400, (path, r.text)
            assert r.json()["error"]["message"].startswith(field), (path, r.text)
    assert (await api.get("/v1.0/calls")).json()["result"] == []
    # Korean is spoken by espeak (the default, piper, cannot): accepted, and the flow names the engine
    r = await api.post("/v1.0/flows", json={"name": "k", "detail": "d", "actions": [
        {"type": "talk", "option": {"text": "안녕하세요", "language": "ko-KR"}}]})
    assert r.status_code == 200, r.text
    assert r.json()["actions"][0]["option"]["provider"] == "espeak"


async def test_a_call_without_flow_or_actions_is_an_empty_flow(api: Any, sandbox: Any) -> None:
    r = await api.post("/v1.0/calls", json={"source": {"type": "tel", "target": sandbox.seed.number},
                                            "destinations": [{"type": "tel", "target": "+15550001111"}]})
    assert r.status_code == 200, r.text
    call = r.json()["calls"][0]
    assert r.json()["groupcalls"][0]["call_ids"] == [call["id"]]
    assert call["action"]["type"] == "answer" and call["action"]["id"] == NIL
    # hung up while it rings: the phone gets a CANCEL and records nothing
    assert (await api.post(f"/v1.0/calls/{call['id']}/hangup")).status_code == 200

    async def ended() -> Any:
        return (await api.get(f"/v1.0/calls/{call['id']}")).json()["status"] == "hangup"
    await _until(ended, 10, "the call to end")
    phone = sandbox.virtual_pstn.phones[-1]
    await asyncio.wait_for(phone.ended.wait(), 5)
    assert not phone.answered.is_set() and not phone.recording.exists()


def test_the_https_certificate_is_made_once_for_the_seed_hosts(tmp_path: Path) -> None:
    cert_path, key_path = ensure_certificate(tmp_path)
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"api.voipbin.test", "localhost"}
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    first = cert_path.read_bytes()
    assert ensure_certificate(tmp_path) == (cert_path, key_path) and cert_path.read_bytes() == first  # kept
    cert_path.write_text("garbage")
    ensure_certificate(tmp_path)
    assert x509.load_pem_x509_certificate(cert_path.read_bytes()).serial_number != cert.serial_number  # remade
