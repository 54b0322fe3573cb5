"""The SIP edge (issue 19): Kamailio in front of two media pods, real baresip phones, real processes
(``voipbin serve --role api|media|worker`` on PostgreSQL and NATS; Kamailio's config from
deploy/kamailio/kamailio.cfg.tmpl).

Shown, in one cluster: ten phones register through Kamailio (each binding keeps Kamailio's Path); ten
calls placed through the api pod, each with a transcribe and a speaking, are spread over both media
pods and reach the phones through Kamailio; every ``/say`` is heard by its phone and every phone's
own speech (a LibriVox recording) is transcribed ``in``. Then one media pod is SIGKILLed: its calls
end with events within 10 s, the other pod's calls go on, the dispatcher marks the dead pod down and
a phone's call to another phone through Kamailio lands on the survivor; restarted, the pod is probed
back into rotation and takes phone calls again.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import asyncpg
import httpx
import pytest

from cluster_support import Cluster, Pod, Seen
from kamailio_support import Kamailio, pod_uri
from tests_support.frame_log import VOICED_RMS, rms
from tests_support.net import free_port
from tests_support.speech import word_recall
from voipbin.demo.baresip import BaresipError, BaresipPhone

pytestmark = [pytest.mark.postgres, pytest.mark.nats, pytest.mark.sip_peer, pytest.mark.slow]

NATS_URL = os.environ.get("VOIPBIN_TEST_NATS_URL", "nats://127.0.0.1:4222")
LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
SENTENCES = [  # (recording, words whisper tiny finds in it at 8 kHz)
    ("sense_and_sensibility_01_austen_64kb-0880.wav", "ill disposed young man"),
    ("sense_and_sensibility_01_austen_64kb-0930.wav", "even amiable himself"),
    ("sense_and_sensibility_01_austen_64kb-0890.wav", "cold hearted selfish"),
    ("sense_and_sensibility_01_austen_64kb-0870.wav", "dashwood leisure prudently"),
    ("sense_and_sensibility_01_austen_64kb-0920.wav", "married woman respectable"),
]
CALLS = 10
SOURCE = {"type": "tel", "target": "+15550100000"}
SAY = "This is the media pod speaking through the edge."
FRAME_BYTES = 320  # 20 ms of 8 kHz PCM16


async def _start_media(cluster: Cluster, n: int) -> Pod:
    """Media pod ``media-<n>``: its own SIP port and an RTP range away from the phones' (30000-39999)."""
    low = 20000 + 4000 * (n - 1)
    return await cluster.start("media", pod_id=f"media-{n}", env={
        "VOIPBIN_SIP_PORT": str(free_port()), "VOIPBIN_RTP_PORT_MIN": str(low),
        "VOIPBIN_RTP_PORT_MAX": str(low + 3998), "VOIPBIN_SIP_TRUSTED_PROXIES": "127.0.0.1"})


async def _query(cluster: Cluster, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(cluster.db_url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


def _speech_wav(path: Path, source: Path) -> Path:
    """``source`` as 8 kHz mono PCM16 after 2 s of silence (the call is set up) and before 600 s more
    (baresip's file source must outlast the call: at its end the phone hangs up)."""
    subprocess.run(["sox", str(source), "-r", "8000", "-c", "1", "-b", "16", str(path), "pad", "2", "600"], check=True)
    return path


def _voiced(phone: BaresipPhone) -> int:
    """Voiced 20 ms frames in what ``phone`` heard in its latest call (the WAV grows while the call
    lasts: its header's sizes are written at the end, so the data runs to the end of the file)."""
    recordings = phone.recordings("dec")
    if not recordings:
        return 0
    raw = recordings[-1].read_bytes()
    pcm = raw[raw.index(b"data") + 8:] if b"data" in raw else b""
    return sum(rms(pcm[i:i + FRAME_BYTES]) > VOICED_RMS for i in range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES))


async def _until(check: object, timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():  # type: ignore[operator]
        if loop.time() > deadline:
            pytest.fail(f"not within {timeout}s: {what}")
        await asyncio.sleep(0.2)  # recordings and rows are written by other processes: polled


async def _start_phone(workdir: Path, ext: str, domain: str, edge_port: int, wav: Path) -> BaresipPhone:
    """A baresip phone of extension ``ext`` whose outbound proxy is Kamailio. Its SIP port is free for UDP
    when picked but may be taken for TCP (baresip binds both): a second pick then."""
    for attempt in range(3):
        phone = BaresipPhone(workdir, user=ext, domain=domain, password=f"edge-{ext}-Secret",
                             proxy=("127.0.0.1", edge_port), audio_file=wav)
        try:
            await phone.start()
            return phone
        except BaresipError:
            await phone.stop()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def _phone_call(cluster: Cluster, caller: BaresipPhone, callee: BaresipPhone, domain: str) -> str:
    """``caller`` dials ``callee``'s extension through Kamailio; both answer; returns the pod of the
    incoming call, then both hang up."""
    await caller.command("dial", f"sip:{callee.user}@{domain}")
    await asyncio.wait_for(callee.wait_event("CALL_ESTABLISHED"), 20)
    await asyncio.wait_for(caller.wait_event("CALL_ESTABLISHED"), 20)
    rows = await _query(cluster, "SELECT pod_id FROM calls WHERE direction = 'incoming' ORDER BY tm_create DESC LIMIT 1")
    await caller.hangup()
    await asyncio.wait_for(caller.wait_event("CALL_CLOSED"), 20)
    await asyncio.wait_for(callee.wait_event("CALL_CLOSED"), 20)
    return str(rows[0]["pod_id"])


async def test_phones_and_api_calls_through_kamailio_survive_a_media_pod_crash(
        cluster: Cluster, seen: Seen, tmp_path: Path) -> None:
    seed = await cluster.seed()
    api_pod, m1, m2, _worker = await asyncio.gather(
        cluster.start("api"), _start_media(cluster, 1), _start_media(cluster, 2), cluster.start("worker"))
    edge = Kamailio(tmp_path / "kamailio", pods=[("127.0.0.1", m1.sip_port), ("127.0.0.1", m2.sip_port)])
    await edge.start()
    phones: list[BaresipPhone] = []
    try:
        await edge.wait_pods({pod_uri("127.0.0.1", m1.sip_port): True, pod_uri("127.0.0.1", m2.sip_port): True})
        token = await api_pod.login()
        domain = f"{seed.customer_id}.registrar.voipbin.test"
        async with httpx.AsyncClient(base_url=api_pod.base_url, params={"token": token}, timeout=30) as api:
            # ten phones register through Kamailio
            for i in range(CALLS):
                ext = f"{4001 + i}"
                r = await api.post("/v1.0/extensions", json={"name": f"phone{i}", "detail": "edge test",
                                                              "extension": ext, "password": f"edge-{ext}-Secret"})
                assert r.status_code == 200, r.text
                wav = _speech_wav(tmp_path / f"say-{i}.wav", LIBRIVOX / SENTENCES[i % len(SENTENCES)][0])
                (tmp_path / f"phone{i}").mkdir()
                phones.append(await _start_phone(tmp_path / f"phone{i}", ext, domain, edge.port, wav))
            for phone in phones:
                await asyncio.wait_for(phone.wait_event("REGISTER_OK"), 20)
            paths = await _query(cluster, "SELECT path, received_port FROM sip_bindings")
            assert len(paths) == CALLS and all(";received=sip:127.0.0.1" in p["path"] for p in paths), paths
            assert {p["received_port"] for p in paths} == {edge.port}  # every phone reached us through the edge

            # ten API calls, each with a transcribe and a speaking, spread over both media pods
            calls: list[str] = []
            for phone in phones:
                r = await api.post("/v1.0/calls", json={
                    "source": SOURCE, "destinations": [{"type": "extension", "target_name": f"phone{phones.index(phone)}"}],
                    "actions": [{"type": "transcribe_start", "option": {"language": "en-US", "direction": "in"}},
                                {"type": "sleep", "option": {"duration": 600000}}]})
                assert r.status_code == 200, r.text
                calls.append(str(r.json()["calls"][0]["id"]))
            for call_id, phone in zip(calls, phones, strict=True):
                await asyncio.wait_for(phone.wait_event("CALL_ESTABLISHED"), 30)
                await seen.until(lambda c=call_id: bool(seen.of("call_progressing", c)), 30)
            pods = {c: str((await _query(cluster, "SELECT pod_id FROM calls WHERE id = $1", c))[0]["pod_id"])
                    for c in calls}
            assert set(pods.values()) == {m1.pod_id, m2.pod_id}, pods
            for call_id in calls:
                r = await api.post("/v1.0/speakings", json={"reference_type": "call", "reference_id": call_id,
                                                            "language": "en-US", "direction": "out"})
                assert r.status_code == 201, r.text
                speaking = r.json()["id"]
                await seen.until(lambda s=speaking: bool(seen.of("speaking_started", s)), 60)
                r = await api.post(f"/v1.0/speakings/{speaking}/say", json={"text": SAY})
                assert r.status_code == 200, r.text
            for phone in phones:  # every /say heard (a second of voiced audio) by its phone
                await _until(lambda p=phone: _voiced(p) >= 50, 90, f"{phone.user} hears the /say")

            # every phone's own speech is transcribed (direction in), on whichever pod holds its call
            def transcripts(call_id: str) -> str:
                return " ".join(e.data.get("message", "") for e in seen.events
                                if e.event_type == "transcript_created" and e.data.get("call_id") == call_id
                                and e.data.get("direction") == "in")
            for i, call_id in enumerate(calls):
                expected = SENTENCES[i % len(SENTENCES)][1]
                await _until(lambda c=call_id, x=expected: word_recall(x, transcripts(c)) >= 0.5, 120,
                             f"call {i} transcribed: {expected!r}")

            # SIGKILL one media pod: its calls end within 10 s with events, the others go on
            victim, survivor = m1, m2
            lost = [c for c in calls if pods[c] == victim.pod_id]
            kept = [c for c in calls if pods[c] == survivor.pod_id]
            loop = asyncio.get_running_loop()
            victim.kill()
            killed_at = loop.time()
            down_after = await edge.wait_pods({pod_uri("127.0.0.1", victim.sip_port): False}, timeout=10)
            await seen.until(lambda: all(seen.of("call_hangup", c) for c in lost), 15)
            ended_after = loop.time() - killed_at
            assert ended_after <= 10.5, f"the dead pod's calls ended {ended_after:.1f}s after the kill"
            for c in kept:
                assert not seen.of("call_hangup", c)
                assert (await api.get(f"/v1.0/calls/{c}")).json()["status"] == "progressing"
            print(f"dispatcher marked the killed pod down after {down_after:.1f}s; its calls ended "
                  f"after {ended_after:.1f}s")
            for c in kept:
                r = await api.post(f"/v1.0/calls/{c}/hangup")
                assert r.status_code == 200, r.text
            for call_id, phone in zip(calls, phones, strict=True):
                if call_id in lost:  # its pod died without a BYE: the phone hangs up (its BYE goes nowhere)
                    await phone.hangup()
                await asyncio.wait_for(phone.wait_event("CALL_CLOSED"), 20)

            # a phone calls another through Kamailio: it lands on the survivor
            assert await _phone_call(cluster, phones[0], phones[1], domain) == survivor.pod_id

            # restarted, the pod is probed back into rotation and takes phone calls again
            await cluster.restart(victim)
            await edge.wait_pods({pod_uri("127.0.0.1", victim.sip_port): True}, timeout=10)
            landed: list[str] = []
            for n in range(8):  # dispatched by a hash of the Call-ID: both pods within a few calls
                landed.append(await _phone_call(cluster, phones[2 + n % 8], phones[3 + n % 7], domain))
                if {victim.pod_id, survivor.pod_id} <= set(landed):
                    break
            assert {victim.pod_id, survivor.pod_id} <= set(landed), (landed, edge.dispatcher_state())
    finally:
        for phone in phones:
            await phone.stop()
        edge.stop()
