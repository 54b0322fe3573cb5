"""The speech pods' request/reply (voipbin.speech.remote, issue 20) on a real NATS server, with
engines that stand in for whisper and piper (no model loads): jobs go to a speech pod and back,
bodies larger than NATS's max_payload travel in parts, two pods of the queue group share the
requests, a stopping pod finishes its job while the other takes the new ones, a pod lost mid-job
(its connection gone, or silent) costs the job a few seconds, not its deadline: another pod runs
it, and every failure is the error a local worker pool raises, never a hang: no speech pod, no
answer within the deadline, a shed job, a refused request."""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
from collections.abc import AsyncIterator

import nats
import pytest
import pytest_asyncio
from nats.aio.client import Client
from nats.aio.msg import Msg

from voipbin.events.nats_bus import NatsBus
from voipbin.speech.errors import SpeechConfigError, SpeechProviderError, UnsupportedLanguageError
from voipbin.speech.remote import (GRACE_S, POLL_S, QUEUE_GROUP, SpeechClient, SpeechServer, stt_subject,
                                   transfer_subject, unpack)
from voipbin.speech.workers import Overloaded

pytestmark = pytest.mark.nats

NATS_URL = os.environ.get("VOIPBIN_TEST_NATS_URL", "nats://127.0.0.1:4222")
MODEL = "tiny_en"
VOICE = "en_US-joe-medium"


class FakeRecognizer:
    """Answers ``<pod>:<bytes>:<sha256 prefix>:<language>:<interim>``; ``gate`` holds jobs, ``error`` fails them."""

    model_token = MODEL

    def __init__(self, pod: str) -> None:
        self.pod = pod
        self.gate: asyncio.Event | None = None
        self.started = asyncio.Event()
        self.error: Exception | None = None
        self.jobs = 0

    async def transcribe(self, pcm: bytes, *, language: str, interim: bool = False) -> str:
        self.jobs += 1
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        return f"{self.pod}:{len(pcm)}:{hashlib.sha256(pcm).hexdigest()[:12]}:{language}:{interim}"


class FakeStt:
    def __init__(self, recognizer: FakeRecognizer) -> None:
        self.recognizer = recognizer

    def local_for(self, language: str) -> FakeRecognizer:
        if language == "xx":
            raise UnsupportedLanguageError("language: no local whisper model transcribes xx")
        return self.recognizer


class FakeSynthesizer:
    """Speaks ``size`` bytes of a pattern for a sentence ``"<size>"``."""

    name = "piper"
    remote_voice = VOICE

    async def synthesize_sentence(self, sentence: str, voice: str | None = None) -> bytes:
        return (bytes(range(256)) * (int(sentence) // 256 + 1))[: int(sentence)]


class FakeTts:
    def get(self, provider: str | None = None) -> FakeSynthesizer:
        return FakeSynthesizer()


class Pods:
    """Speech pods on their own NATS connections, and a media pod's client, in one test namespace."""

    def __init__(self) -> None:
        self.namespace = f"test{secrets.token_hex(4)}.speech"
        self.buses: list[NatsBus] = []
        self.servers: list[SpeechServer] = []
        self.recognizers: list[FakeRecognizer] = []
        self.plain: list[Client] = []

    async def bus(self, name: str) -> NatsBus:
        bus = NatsBus(NATS_URL, name=name)
        await bus.start()
        self.buses.append(bus)
        return bus

    async def speech_pod(self, pod_id: str) -> FakeRecognizer:
        recognizer = FakeRecognizer(pod_id)
        server = SpeechServer(await self.bus(pod_id), pod_id=pod_id, stt=FakeStt(recognizer),  # type: ignore[arg-type]
                              tts=FakeTts(), namespace=self.namespace)  # type: ignore[arg-type]
        await server.start()
        self.servers.append(server)
        self.recognizers.append(recognizer)
        return recognizer

    async def client(self, timeout_s: float = 10.0, **liveness: float) -> SpeechClient:
        return SpeechClient(await self.bus("media"), timeout_s=timeout_s, namespace=self.namespace, **liveness)

    async def kill(self, pod_id: str) -> None:
        """As at a SIGKILL: the pod's connection closes without answering (its subscriptions go with
        it); its job tasks, still running in this process, are then cancelled."""
        (index,) = [i for i, server in enumerate(self.servers) if server.pod_id == pod_id]
        server = self.servers.pop(index)
        self.recognizers.pop(index)
        await self.buses[index].close()
        await server.stop(grace_s=0)

    async def nats(self) -> Client:
        """A plain NATS connection (a queue member that never answers, a watcher of a pod's subject)."""
        nc = await nats.connect(NATS_URL)
        self.plain.append(nc)
        return nc

    async def silent_pod(self) -> asyncio.Event:
        """A member of the speech queue group that takes one job and never answers (a pod whose
        machine is lost: its subscription stays on the server), then leaves the group. Set once it
        took the job."""
        took = asyncio.Event()

        async def swallow(msg: Msg) -> None:
            took.set()

        nc = await self.nats()
        sub = await nc.subscribe(stt_subject("*", self.namespace), queue=QUEUE_GROUP, cb=swallow)
        await sub.unsubscribe(limit=1)  # the server drops the interest after one message
        await nc.flush()
        return took

    async def polls(self, pod_id: str) -> asyncio.Queue[str]:
        """The job ids of the requests asking ``pod_id`` for a job (``{"job": id}`` on its transfer
        subject), as NATS delivers them to every subscriber."""
        seen: asyncio.Queue[str] = asyncio.Queue()

        async def watch(msg: Msg) -> None:
            header, _ = unpack(msg.data)
            if "job" in header:
                seen.put_nowait(str(header["job"]))

        nc = await self.nats()
        await nc.subscribe(transfer_subject(pod_id, self.namespace), cb=watch)
        await nc.flush()
        return seen

    async def close(self) -> None:
        for recognizer in self.recognizers:
            if recognizer.gate is not None:
                recognizer.gate.set()
        for server in self.servers:
            await server.stop(grace_s=1)
        for bus in self.buses:
            await bus.close()
        for nc in self.plain:
            await nc.close()


@pytest_asyncio.fixture
async def pods() -> AsyncIterator[Pods]:
    p = Pods()
    try:
        yield p
    finally:
        await p.close()


async def test_a_decode_and_a_sentence_go_to_a_speech_pod_and_back(pods: Pods) -> None:
    await pods.speech_pod("speech-a")
    client = await pods.client()
    pcm = secrets.token_bytes(3200)
    text = await client.transcribe(MODEL, pcm, language="en", interim=True)
    assert text == f"speech-a:3200:{hashlib.sha256(pcm).hexdigest()[:12]}:en:True"
    assert await client.synthesize("piper", VOICE, "1000") == (bytes(range(256)) * 4)[:1000]
    assert pods.servers[0].served.stt_interim == 1 and pods.servers[0].served.tts == 1


async def test_bodies_over_max_payload_travel_in_parts(pods: Pods) -> None:
    await pods.speech_pod("speech-a")
    client = await pods.client()
    max_payload = pods.buses[0].max_payload
    pcm = secrets.token_bytes(2 * max_payload + 12345)  # an utterance over two NATS messages long
    text = await client.transcribe(MODEL, pcm, language="en")
    assert text == f"speech-a:{len(pcm)}:{hashlib.sha256(pcm).hexdigest()[:12]}:en:False"
    size = 3 * max_payload + 777  # a sentence whose audio is over three messages long
    assert await client.synthesize("piper", VOICE, str(size)) == (bytes(range(256)) * (size // 256 + 1))[:size]
    assert not pods.servers[0]._transfers  # nothing left behind


async def test_two_speech_pods_share_the_requests(pods: Pods) -> None:
    a = await pods.speech_pod("speech-a")
    b = await pods.speech_pod("speech-b")
    client = await pods.client()
    texts = await asyncio.gather(*(client.transcribe(MODEL, bytes([i]) * 320, language="en") for i in range(40)))
    by_pod = {pod: sum(t.startswith(f"{pod}:") for t in texts) for pod in ("speech-a", "speech-b")}
    assert by_pod["speech-a"] + by_pod["speech-b"] == 40
    assert by_pod["speech-a"] > 0 and by_pod["speech-b"] > 0, by_pod  # the queue group spreads them
    assert (a.jobs, b.jobs) == (by_pod["speech-a"], by_pod["speech-b"])


async def test_a_stopping_pod_finishes_its_job_and_the_other_takes_the_new_ones(pods: Pods) -> None:
    a = await pods.speech_pod("speech-a")
    client = await pods.client()
    a.gate = asyncio.Event()
    held = asyncio.create_task(client.transcribe(MODEL, b"\x01\x00" * 160, language="en"))
    await a.started.wait()
    await pods.speech_pod("speech-b")
    await pods.servers[0].stop_taking_jobs()  # as at SIGTERM: the queue group's other member takes over
    stopping = asyncio.create_task(pods.servers[0].stop(grace_s=10))
    new = [await client.transcribe(MODEL, b"\x02\x00" * 160, language="en") for _ in range(5)]
    assert all(t.startswith("speech-b:") for t in new), new
    assert not stopping.done()  # it waits for its job in flight
    a.gate.set()
    assert (await held).startswith("speech-a:")  # the job in flight was answered, not dropped
    await stopping


async def test_no_speech_pod_is_a_provider_error_at_once(pods: Pods) -> None:
    client = await pods.client(timeout_s=30)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(SpeechProviderError, match="no speech pod serves"):
        await client.transcribe(MODEL, b"\x00\x00" * 160, language="en")
    with pytest.raises(SpeechProviderError, match="no speech pod serves"):
        await client.synthesize("piper", VOICE, "100")
    assert loop.time() - started < 10  # "no responders" from the server, not the 30 s deadline


async def test_no_answer_within_the_deadline_is_a_provider_error(pods: Pods) -> None:
    a = await pods.speech_pod("speech-a")
    a.gate = asyncio.Event()  # the job never finishes
    client = await pods.client(timeout_s=0.3)
    with pytest.raises(SpeechProviderError, match="no speech pod answered"):
        await client.transcribe(MODEL, b"\x00\x00" * 160, language="en")


async def test_errors_on_the_speech_pod_are_the_local_pools_errors(pods: Pods) -> None:
    a = await pods.speech_pod("speech-a")
    client = await pods.client()
    a.error = Overloaded("whisper", "whisper workers busy: the job waited over 3 s and was shed")
    with pytest.raises(Overloaded, match="was shed"):
        await client.transcribe(MODEL, b"\x00\x00" * 160, language="en")
    a.error = SpeechProviderError("whisper", "whisper worker process died running the job")
    with pytest.raises(SpeechProviderError, match="worker process died") as failed:
        await client.transcribe(MODEL, b"\x00\x00" * 160, language="en")
    assert not isinstance(failed.value, Overloaded)
    a.error = None
    with pytest.raises(SpeechConfigError, match="xx"):
        await client.transcribe(MODEL, b"\x00\x00" * 160, language="xx")
    with pytest.raises(SpeechConfigError, match="not base"):  # a model this pod does not have
        await client.transcribe("base", b"\x00\x00" * 160, language="en")
    with pytest.raises(SpeechConfigError, match="voice"):
        await client.synthesize("piper", "en_GB-other", "100")
    served = pods.servers[0].served
    assert (served.shed, served.failed) == (1, 4)


LOST_BOUND_S = 6.0
"""A job whose pod is lost is answered by another pod within this many seconds of a 20 s deadline
(the pod's liveness bound POLL_S + GRACE_S, 2.5 s, once or twice, and the job): a behaviour bound."""


@pytest.mark.parametrize("when", ["before its first answer", "while the requester polls"])
async def test_a_pod_killed_mid_job_costs_the_job_seconds_not_its_deadline(pods: Pods, when: str) -> None:
    a = await pods.speech_pod("speech-a")
    a.gate = asyncio.Event()  # the job never finishes there
    polls = await pods.polls("speech-a")
    client = await pods.client(timeout_s=20)
    loop = asyncio.get_running_loop()
    started = loop.time()
    job = asyncio.create_task(client.transcribe(MODEL, b"\x03\x00" * 160, language="en"))
    await a.started.wait()
    b = await pods.speech_pod("speech-b")
    if when == "while the requester polls":  # the pod answered "working" and is asked again
        await polls.get()
    await pods.kill("speech-a")
    text = await job
    elapsed = loop.time() - started
    assert text.startswith("speech-b:") and (a.jobs, b.jobs) == (1, 1), (text, a.jobs, b.jobs)
    assert elapsed < LOST_BOUND_S, f"{elapsed:.1f} s"


async def test_a_silent_pod_costs_the_job_seconds_not_its_deadline(pods: Pods) -> None:
    took = await pods.silent_pod()  # the only member: it takes the job
    client = await pods.client(timeout_s=20)
    loop = asyncio.get_running_loop()
    started = loop.time()
    job = asyncio.create_task(client.transcribe(MODEL, b"\x04\x00" * 160, language="en"))
    await took.wait()
    b = await pods.speech_pod("speech-b")
    text = await job
    elapsed = loop.time() - started
    assert text.startswith("speech-b:") and b.jobs == 1, text
    assert POLL_S + GRACE_S <= elapsed < LOST_BOUND_S, f"{elapsed:.1f} s"  # noticed by its silence


async def test_a_job_lost_twice_is_a_provider_error_before_the_deadline(pods: Pods) -> None:
    first, second = await pods.silent_pod(), await pods.silent_pod()
    client = await pods.client(timeout_s=20)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(SpeechProviderError, match="lost twice"):
        await client.transcribe(MODEL, b"\x05\x00" * 160, language="en")
    assert first.is_set() and second.is_set()  # retried once, on the other member
    assert loop.time() - started < 2 * LOST_BOUND_S


async def test_a_long_job_on_a_live_pod_is_not_sent_again(pods: Pods) -> None:
    a = await pods.speech_pod("speech-a")
    a.gate = asyncio.Event()
    polls = await pods.polls("speech-a")
    client = await pods.client(timeout_s=20, poll_s=0.1, grace_s=0.2)  # lost after 0.3 s of silence
    job = asyncio.create_task(client.transcribe(MODEL, b"\x06\x00" * 160, language="en"))
    await a.started.wait()
    b = await pods.speech_pod("speech-b")
    for _ in range(10):  # a second of "working" answers: over three times the liveness bound
        await polls.get()
    a.gate.set()
    assert (await job).startswith("speech-a:")
    assert (a.jobs, b.jobs) == (1, 0)  # never run twice
    assert not pods.servers[0]._running  # its reply taken, nothing left behind


async def test_a_job_still_running_when_its_pod_stops_goes_to_another_pod(pods: Pods) -> None:
    a = await pods.speech_pod("speech-a")
    a.gate = asyncio.Event()  # it would not finish within the stop's grace
    client = await pods.client(timeout_s=20)
    job = asyncio.create_task(client.transcribe(MODEL, b"\x07\x00" * 160, language="en"))
    await a.started.wait()
    b = await pods.speech_pod("speech-b")
    await pods.servers[0].stop(grace_s=0.1)  # its job is cancelled there: the requester sends it again
    assert (await job).startswith("speech-b:")
    assert (a.jobs, b.jobs) == (1, 1)
