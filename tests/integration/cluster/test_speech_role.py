"""Speech pods (issue 20): ``voipbin serve --role speech`` processes run whisper and piper for a media
pod with ``VOIPBIN_SPEECH_REMOTE=nats``, sharing its jobs through a NATS queue group.

One api pod, one media pod (the sandbox's virtual PSTN: its phone speaks LibriVox recordings and
records what it hears) and two speech pods on PostgreSQL and NATS. Shown: the phone's real speech
is transcribed (``transcript_created``, direction ``in``) and a ``/say`` is heard on the phone, with
every decode and sentence done by the speech pods; both speech pods served jobs. Then one is SIGKILLed
while it runs a job: this process sends long sentences (a few seconds of piper each) as a media pod
would, until the pod asked for one of them is the one to kill. The job it held is noticed lost within
seconds and sent once more, to the other pod, not failed at the 30 s deadline; so is any job of the
media pod it held (``speech pod lost a job`` in its log, never twice): every utterance that ended
before the kill gets its transcript (none dropped ``failed``) well within the deadline, and the other
pod serves the next decodes and a /say.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from cluster_support import Cluster, Pod, Seen
from tests_support.frame_log import VOICED_RMS, rms
from voipbin.events.nats_bus import NatsBus
from voipbin.events.protocol import RequestHandler, Subscription
from voipbin.speech.remote import SpeechClient, transfer_subject, tts_subject, unpack
from voipbin.speech.tts.piper import PiperSynthesizer

pytestmark = [pytest.mark.postgres, pytest.mark.nats, pytest.mark.sip_peer, pytest.mark.slow]

SOURCE = {"type": "tel", "target": "+15550100000"}
SAY = "Hello from the speech pods. This sentence was spoken by one of them."
FRAME_BYTES = 320  # 20 ms of 8 kHz PCM16
REMOTE_DEADLINE_S = 30
REMOTE_ENV = {"VOIPBIN_SPEECH_REMOTE": "nats", "VOIPBIN_SPEECH_REMOTE_TIMEOUT_SECONDS": str(REMOTE_DEADLINE_S)}
LOST_NOTICED_S = 5.0
"""A job of the killed pod is noticed lost within this many seconds of the kill (the liveness bound
is 2.5 s; the rest is a loaded machine's slack): a behaviour bound, far under the deadline."""
AFTER_KILL_S = 20.0
"""What the killed pod held is answered by the other within this (the deadline is 30 s)."""
LONG_SENTENCE = "The quick brown fox jumps over the lazy dog near the riverbank while the sun sets slowly. " * 8
"""About 40 s of speech: 2-3 s of piper on one core, so its pod is asked for it at least once."""


class Requests:
    """A media pod's bus as its `SpeechClient` uses it, each request noted: ``(loop time, subject,
    header)``; ``asked`` is set once a request asks the pod ``watch`` for a job it runs."""

    def __init__(self, bus: NatsBus, watch: Pod) -> None:
        self._bus = bus
        self._watch = transfer_subject(watch.pod_id)
        self.sent: list[tuple[float, str, dict[str, object]]] = []
        self.asked = asyncio.Event()

    @property
    def max_payload(self) -> int:
        return self._bus.max_payload

    async def serve(self, subject: str, handler: RequestHandler, *, queue: str = "") -> Subscription:
        return await self._bus.serve(subject, handler, queue=queue)

    async def request(self, subject: str, payload: bytes, timeout: float) -> bytes:
        header, _ = unpack(payload)
        self.sent.append((asyncio.get_running_loop().time(), subject, header))
        if subject == self._watch and "job" in header:
            self.asked.set()
        return await self._bus.request(subject, payload, timeout)


def log_entries(pod: Pod, event: str) -> list[dict[str, object]]:
    """The JSON log entries of ``pod`` named ``event``."""
    entries = []
    for line in pod.log_path.read_text(errors="replace").splitlines() if pod.log_path.exists() else ():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("event") == event:
            entries.append(entry)
    return entries


def transcripts_in(seen: Seen, call_id: str) -> list[str]:
    return [e.data.get("message", "") for e in seen.events if e.event_type == "transcript_created"
            and e.data.get("call_id") == call_id and e.data.get("direction") == "in"]


def served(pod: Pod, kind: str) -> int:
    """Jobs of ``kind`` (stt finals, tts sentences) a speech pod answered ``ok``, from its JSON log."""
    return sum(e.get("kind") == kind and e.get("status") == "ok" for e in log_entries(pod, "speech job served"))


def utterances(seen: Seen, *event_types: str) -> list[dict[str, object]]:
    """The data of the events of the call's ``in`` transcribe among ``event_types``."""
    return [e.data for e in seen.events if e.event_type in event_types and e.data.get("direction") == "in"]


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


async def say_heard(api: httpx.AsyncClient, speaking_id: str, recording: Path, *, timeout: float = 90) -> float:
    """A /say on the speaking is heard by the phone (a second more of voiced audio than before);
    the seconds from its post."""
    before = voiced_frames(recording)
    r = await api.post(f"/v1.0/speakings/{speaking_id}/say", json={"text": SAY})
    assert r.status_code == 200, r.text
    posted = time.monotonic()
    await until(lambda: voiced_frames(recording) >= before + 50, timeout, "the phone hears the /say")
    return time.monotonic() - posted


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

        # long sentences from this process, two at a time, until speech pod 1 is asked for one it runs
        bus = NatsBus(cluster.bus_url, name="speech-requester")
        await bus.start()
        requests = Requests(bus, s1)
        piper = PiperSynthesizer(remote=SpeechClient(requests, timeout_s=REMOTE_DEADLINE_S))  # type: ignore[arg-type]
        jobs: list[asyncio.Task[bytes]] = []
        asked = asyncio.ensure_future(requests.asked.wait())
        try:
            for _ in range(8):  # each pair misses pod 1 with a chance of 1/4
                jobs += [asyncio.create_task(piper.synthesize_sentence(LONG_SENTENCE)) for _ in range(2)]
                await asyncio.wait({asked, asyncio.gather(*jobs[-2:])}, return_when=asyncio.FIRST_COMPLETED)
                if asked.done():
                    break
            assert asked.done(), "speech pod 1 never ran a long sentence"

            # speech pod 1 dies mid-job: the job is noticed lost and sent once more, to pod 2
            loop = asyncio.get_running_loop()
            ended = len(utterances(seen, "transcribe_speech_ended"))
            killed, wall_killed = loop.time(), time.time()
            s1.kill()
            spoken = await asyncio.wait_for(asyncio.gather(*jobs), AFTER_KILL_S)
            answered = loop.time() - killed
        finally:
            asked.cancel()
            await bus.close()
        queue_subject = tts_subject("piper", piper.remote_voice)
        resent = [t - killed for t, subject, _ in requests.sent if subject == queue_subject and t > killed]
        assert resent and all(0 <= t < LOST_NOTICED_S for t in resent), resent  # noticed within seconds
        assert all(len(pcm) > 10 * piper.sample_rate * 2 for pcm in spoken)  # each sentence whole

        # every utterance that ended before the kill has its transcript (or is dropped, never "failed")
        await seen.until(lambda: len(utterances(seen, "transcript_created", "transcript_dropped")) >= ended,
                         AFTER_KILL_S)
        before = (served(s2, "stt"), served(s2, "tts"), len(transcripts_in(seen, call_id)))
        say_s = await say_heard(api, speaking_id, recording, timeout=AFTER_KILL_S)
        await seen.until(lambda: len(transcripts_in(seen, call_id)) > before[2], 120)
        await until(lambda: served(s2, "stt") > before[0], 30, "the surviving speech pod decodes")
        await until(lambda: served(s2, "tts") >= before[1] + 2, 60, "both sentences of the /say after the kill "
                    "spoken by the surviving speech pod")  # heard once its first sentence plays
        failed = [d for d in utterances(seen, "transcript_dropped") if d.get("reason") == "failed"]
        assert not failed, failed
        lost = log_entries(media, "speech pod lost a job")  # the media pod's own jobs pod 1 held
        noticed = [round(datetime.fromisoformat(str(e["timestamp"])).timestamp() - wall_killed, 1) for e in lost]
        assert all(e.get("retry") for e in lost), lost  # each sent once more, none lost twice
        assert all(0 <= t < LOST_NOTICED_S for t in noticed), (noticed, lost)  # none taken for lost before
        dropped = utterances(seen, "transcript_dropped")
        print(f"jobs served before the kill {pods}; after it, {s2.pod_id}: stt {served(s2, 'stt')}, "
              f"tts {served(s2, 'tts')}; {len(jobs)} long sentences, {len(resent)} of them held by the "
              f"killed pod sent again {[round(t, 1) for t in resent]} s after the kill, all answered "
              f"{answered:.1f} s after it; the media pod's jobs lost and sent again: {len(lost)}, "
              f"{noticed} s after the kill; /say after the kill heard in {say_s:.1f} s; "
              f"transcript_dropped {[d.get('reason') for d in dropped]}")
