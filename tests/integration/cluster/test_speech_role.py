"""Speech pods (issue 20): ``voipbin serve --role speech`` processes run whisper and piper for a media
pod with ``VOIPBIN_SPEECH_REMOTE=nats``, sharing its jobs through a NATS queue group.

One api pod, one media pod (the sandbox's virtual PSTN: its phone speaks LibriVox recordings and
records what it hears) and two speech pods on PostgreSQL and NATS. Shown: the phone's real speech
is transcribed (``transcript_created``, direction ``in``) and a ``/say`` is heard on the phone, with
every decode and sentence done by the speech pods; both speech pods served jobs; after a SIGKILL of one, the other serves the next ones
(transcripts and a /say go on).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from cluster_support import Cluster, Pod, Seen
from tests_support.frame_log import VOICED_RMS, rms

pytestmark = [pytest.mark.postgres, pytest.mark.nats, pytest.mark.sip_peer, pytest.mark.slow]

SOURCE = {"type": "tel", "target": "+15550100000"}
SAY = "Hello from the speech pods. This sentence was spoken by one of them."
FRAME_BYTES = 320  # 20 ms of 8 kHz PCM16
REMOTE_ENV = {"VOIPBIN_SPEECH_REMOTE": "nats", "VOIPBIN_SPEECH_REMOTE_TIMEOUT_SECONDS": "30"}


def transcripts_in(seen: Seen, call_id: str) -> list[str]:
    return [e.data.get("message", "") for e in seen.events if e.event_type == "transcript_created"
            and e.data.get("call_id") == call_id and e.data.get("direction") == "in"]


def served(pod: Pod, kind: str) -> int:
    """Jobs of ``kind`` (stt finals, tts sentences) a speech pod answered ``ok``, from its JSON log."""
    count = 0
    for line in pod.log_path.read_text(errors="replace").splitlines() if pod.log_path.exists() else ():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("event") == "speech job served" and entry.get("kind") == kind and entry.get("status") == "ok":
            count += 1
    return count


def voiced_frames(recording: Path) -> int:
    """Frames above VOICED_RMS in what the virtual phone heard so far (the WAV grows during the call)."""
    data = recording.read_bytes()[44:]
    return sum(rms(data[i:i + FRAME_BYTES]) > VOICED_RMS for i in range(0, len(data) - FRAME_BYTES + 1, FRAME_BYTES))


async def until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``check`` (files written by other processes: no event to await) until true or ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout:.0f}s: {what}")
        await asyncio.sleep(0.25)


async def say_heard(api: httpx.AsyncClient, speaking_id: str, recording: Path) -> None:
    """A /say on the speaking is heard by the phone (a second more of voiced audio than before)."""
    before = voiced_frames(recording)
    r = await api.post(f"/v1.0/speakings/{speaking_id}/say", json={"text": SAY})
    assert r.status_code == 200, r.text
    await until(lambda: voiced_frames(recording) >= before + 50, 90, "the phone hears the /say")


async def test_media_pod_speech_runs_on_two_speech_pods(cluster: Cluster, seen: Seen) -> None:
    await cluster.seed()
    start = 240  # four processes importing at once on a small shared machine
    api_pod, media, s1, s2 = await asyncio.gather(
        cluster.start("api", timeout=start), cluster.start("media", env=REMOTE_ENV, timeout=start),
        cluster.start("speech", timeout=start), cluster.start("speech", timeout=start))
    rows = {p.pod_id: await cluster.pod_row(p.pod_id) for p in (s1, s2)}
    assert {row["role"] for row in rows.values() if row} == {"speech"}
    token = await api_pod.login()
    async with httpx.AsyncClient(base_url=api_pod.base_url, params={"token": token}, timeout=60) as api:
        number = "+15559870100"
        r = await api.post("/v1.0/calls", json={
            "source": SOURCE, "destinations": [{"type": "tel", "target": number}],
            "actions": [{"type": "transcribe_start", "option": {"language": "en-US", "direction": "in"}},
                        {"type": "sleep", "option": {"duration": 600000}}]})
        assert r.status_code == 200, r.text
        call_id = str(r.json()["calls"][0]["id"])
        await seen.until(lambda: bool(seen.of("call_progressing", call_id)), 30)
        (recording,) = media.recordings.glob(f"{number}-*.wav")

        # the phone's own speech is transcribed by the speech pods
        await seen.until(lambda: any(t.strip() for t in transcripts_in(seen, call_id)), 180)
        r = await api.post("/v1.0/speakings", json={"reference_type": "call", "reference_id": call_id,
                                                    "language": "en-US", "direction": "out"})
        assert r.status_code == 201, r.text
        speaking_id = str(r.json()["id"])
        await seen.until(lambda: bool(seen.of("speaking_started", speaking_id)), 60)
        # /says (two sentences each) until both speech pods have spoken some: the queue group spreads them
        for _ in range(6):
            await say_heard(api, speaking_id, recording)
            if served(s1, "tts") and served(s2, "tts"):
                break
        pods = {p.pod_id: (served(p, "stt"), served(p, "tts")) for p in (s1, s2)}
        assert all(stt + tts > 0 for stt, tts in pods.values()), pods
        assert sum(stt for stt, _ in pods.values()) >= 1, pods

        # one speech pod dies: the other takes the next jobs (the queue group forgets a closed connection)
        s1.kill()
        before = (served(s2, "stt"), served(s2, "tts"), len(transcripts_in(seen, call_id)))
        await say_heard(api, speaking_id, recording)
        await seen.until(lambda: len(transcripts_in(seen, call_id)) > before[2], 120)
        await until(lambda: served(s2, "stt") > before[0], 30, "the surviving speech pod decodes")
        await until(lambda: served(s2, "tts") >= before[1] + 2, 60, "both sentences of the /say after the kill "
                    "spoken by the surviving speech pod")  # heard once its first sentence plays
        dropped = [e for e in seen.events if e.event_type == "transcript_dropped"]
        print(f"jobs served before the kill {pods}; after it, {s2.pod_id}: stt {served(s2, 'stt')}, "
              f"tts {served(s2, 'tts')}; transcript_dropped {len(dropped)}")
