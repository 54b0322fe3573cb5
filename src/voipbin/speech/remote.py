"""Speech inference on speech pods over the bus (issue 20): STT and TTS scale apart from media pods.

``voipbin serve --role speech`` runs a :class:`SpeechServer`: it answers requests on (subjects
under `NAMESPACE`)

* ``voipbin.speech.stt.whisper.<model>``: 16 kHz PCM16 of one utterance -> its text (a final, or
  an interim with ``interim`` set: shed sooner on a busy pod, as locally);
* ``voipbin.speech.tts.<engine>.<voice>`` (``piper.en_US-joe-medium``, ``kokoro.ja``): one
  sentence -> PCM16 at the voice's rate,

each as a member of the NATS *queue group* ``voipbin-speech``: the server hands every request to
one member, so N speech pods share the load. A pod runs each job on its own local
:class:`~voipbin.speech.workers.WorkerPool` (the engines of its `SpeechSettings`), exactly as a
media pod without speech pods would. ``<model>``/``<voice>`` name what the requester has
configured (:func:`subject_token` of the model directory or voice name): a pod serves the models
it has, and a request for a model no pod has finds no responder.

A media pod with ``VOIPBIN_SPEECH_REMOTE=nats`` sends those jobs through a :class:`SpeechClient`
(the VAD, stateful per stream, stays on the media pod). Every request has a deadline
(``VOIPBIN_SPEECH_REMOTE_TIMEOUT_SECONDS``); the requester sees the errors a local pool raises:

* the speech pod shed the job (its workers are behind) -> :class:`~voipbin.speech.workers.Overloaded`
  (a final becomes a ``transcript_dropped`` event, reason ``overloaded``);
* no speech pod serves the subject, none answered within the deadline, the pods that took it were
  lost twice (below), or the job failed there -> :class:`~voipbin.speech.errors.SpeechProviderError`
  (``transcript_dropped`` reason ``failed``, a speaking's error);
* a request the engine refuses (a language or voice it lacks) -> ``SpeechConfigError``.

A pod lost mid-job (SIGKILL, crash, machine gone) is noticed within ``POLL_S + GRACE_S`` (2.5 s),
not at the deadline, and the job is sent once more to the queue subject (the queue group picks a
live pod), within the same deadline. NATS does not tell a requester that the one responder of
its request died, so the pod keeps answering: each request carries ``wait`` (``POLL_S``, 1 s),
and the pod that runs a job answers within it, with the result if the job is done, else
``{"status": "working", "to": <its transfer subject>, "job": <id>}``; the requester then asks
``{"job": <id>, "wait": ...}`` on ``to``, answered the same way (a long poll: the result comes the
moment the job is done, and a job under ``wait`` costs no extra message). A request not answered
within ``POLL_S + GRACE_S``, "no responders" on a pod's transfer subject (its connection is gone:
the server answers at once) or ``{"status": "unknown"}`` (a pod restarted under the same id, a
transfer or job it no longer has) means the pod is lost. A job is sent again only then, so it
never runs on two live pods on purpose (a pod stalled past the bound would be taken for lost: a
decode or a sentence run twice is harmless). The liveness poll was chosen over a heartbeat
published to the requester (which needs a subscription per requester and a second channel for
the result) and over probes beside a pending request (a probe of a dead pod can get "no
responders" sooner, but a pod whose machine is lost answers no probe either, so the bound stays
and the messages double): one request at a time per job, on subjects the pods already serve. A
job's reply not asked for within ``RESULT_TTL_S`` is dropped (its requester is gone); a request
without ``wait`` is answered when its job is done.

Wire format: one message is ``len(header) (4 bytes, big-endian) | header (JSON) | body (bytes)``.
A body larger than one message (NATS ``max_payload``, 1 MiB by default; 30 s of 16 kHz PCM16 is
960 000 bytes, a long sentence at 22 050 Hz more) travels in parts: the first part goes to the
queue subject with the whole ``size``; the pod that took it answers ``{"status": "more", "to":
<its own transfer subject>, "transfer": <id>}`` and the other parts go there, the last one
answered as a job (its result, or ``working``). A result larger than one message comes back the
same way: its first part with ``size``, ``to`` and ``transfer``, the rest fetched from ``to`` by
``offset``. A transfer left unfinished is dropped after ``TRANSFER_TTL_S``. Statuses: ``ok``,
``more``, ``working``, ``overloaded``, ``invalid``, ``failed``, ``unknown``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from voipbin.events.protocol import NoResponder, RequestReply, Subscription
from voipbin.speech.errors import SpeechConfigError, SpeechProviderError
from voipbin.speech.workers import Overloaded

if TYPE_CHECKING:
    from voipbin.speech.stt.registry import SttRegistry
    from voipbin.speech.tts.registry import TtsRegistry

log = structlog.get_logger(__name__)

NAMESPACE = "voipbin.speech"
"""The first tokens of every speech subject (tests use their own, apart from a running cluster)."""
QUEUE_GROUP = "voipbin-speech"
"""The NATS queue group of every speech pod: a request goes to one member."""
DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024
"""NATS's default ``max_payload``; used when the bus does not say (the in-process bus)."""
HEADER_ROOM_BYTES = 4096
"""Kept free in each message for the 4-byte length and the JSON header."""
TRANSFER_TTL_S = 60.0
"""An upload or download in parts not finished within this many seconds is dropped."""
POLL_S = 1.0
"""A speech pod answers a request within this many seconds: the job's result, or ``working``."""
GRACE_S = 1.5
"""Added to ``POLL_S``: a pod that has not answered within the sum is lost (its job is sent again)."""
MAX_WAIT_S = 30.0
"""The longest a speech pod holds a request (a requester's ``wait``) before answering ``working``."""
RESULT_TTL_S = 5.0
"""A finished job's reply not asked for within this many seconds is dropped (its requester is gone)."""
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def subject_token(name: str) -> str:
    """``name`` (a model directory or voice name) as one NATS subject token: every character outside
    ``[A-Za-z0-9_-]`` becomes ``_`` (``tiny.en`` -> ``tiny_en``)."""
    return _UNSAFE.sub("_", name) or "_"


def stt_subject(model: str, namespace: str = NAMESPACE) -> str:
    """The subject of the decodes of whisper model token ``model`` (``*``: all of them)."""
    return f"{namespace}.stt.whisper.{model}"


def tts_subject(engine: str, voice: str, namespace: str = NAMESPACE) -> str:
    """The subject of the sentences of ``engine`` (``piper``, ``kokoro``) voice token ``voice``."""
    return f"{namespace}.tts.{engine}.{voice}"


def transfer_subject(pod_id: str, namespace: str = NAMESPACE) -> str:
    """Where the parts of a large body go, on the speech pod that took the first part."""
    return f"{namespace}.pods.{subject_token(pod_id)}.transfers"


def pack(header: dict[str, Any], body: bytes = b"") -> bytes:
    """One message: 4-byte big-endian header length, the JSON header, the body."""
    encoded = json.dumps(header, separators=(",", ":")).encode()
    return len(encoded).to_bytes(4, "big") + encoded + body


def unpack(message: bytes) -> tuple[dict[str, Any], bytes]:
    """``(header, body)`` of a message made by :func:`pack`. Raises ValueError when malformed."""
    if len(message) < 4:
        raise ValueError("speech message shorter than its length prefix")
    size = int.from_bytes(message[:4], "big")
    if len(message) < 4 + size:
        raise ValueError("speech message shorter than its header")
    header = json.loads(message[4:4 + size])
    if not isinstance(header, dict):
        raise ValueError("speech message header is not an object")
    return header, message[4 + size:]


def _part_bytes(bus: object) -> int:
    try:
        max_payload = int(getattr(bus, "max_payload", DEFAULT_MAX_PAYLOAD_BYTES))
    except RuntimeError:  # a bus not started yet
        max_payload = DEFAULT_MAX_PAYLOAD_BYTES
    return max(1024, max_payload - HEADER_ROOM_BYTES)


# --- the media pod's side ---------------------------------------------------------------------


class SpeechClient:
    """Sends speech jobs to the speech pods over ``bus`` (request/reply), each with a deadline of
    ``timeout_s`` seconds. ``part_bytes``: largest body sent or received in one message (default:
    the bus's ``max_payload`` less ``HEADER_ROOM_BYTES``); ``namespace``: the subjects' first tokens;
    ``poll_s``, ``grace_s``: the pod's liveness (module docstring: a pod that has not answered within
    ``poll_s + grace_s`` seconds is lost)."""

    def __init__(self, bus: RequestReply, *, timeout_s: float = 20.0, part_bytes: int | None = None,
                 namespace: str = NAMESPACE, poll_s: float = POLL_S, grace_s: float = GRACE_S) -> None:
        self._bus = bus
        self.timeout_s = timeout_s
        self._part_bytes = part_bytes
        self.namespace = namespace
        self.poll_s = poll_s
        self.grace_s = grace_s

    async def transcribe(self, model: str, pcm: bytes, *, language: str, interim: bool = False) -> str:
        """The text of one 16 kHz PCM16 utterance, decoded by a speech pod with whisper model token
        ``model``. Raises Overloaded, SpeechProviderError or SpeechConfigError (module docstring)."""
        header, _ = await self._call("whisper", stt_subject(model, self.namespace),
                                     {"model": model, "language": language, "interim": interim}, pcm)
        return str(header.get("text", ""))

    async def synthesize(self, engine: str, voice: str, sentence: str, speaker: str | None = None) -> bytes:
        """PCM16 of one ``sentence`` spoken by a speech pod's ``engine`` voice token ``voice``
        (``speaker``: the voice or speaker the request named, None for the default). Raises
        Overloaded, SpeechProviderError or SpeechConfigError (module docstring)."""
        _, body = await self._call(engine, tts_subject(engine, voice, self.namespace),
                                   {"engine": engine, "voice": voice, "text": sentence, "speaker": speaker}, b"")
        return body

    async def _call(self, engine: str, subject: str, header: dict[str, Any], body: bytes) -> tuple[dict[str, Any], bytes]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + self.timeout_s
        lost: _PodLost | None = None
        for attempt in range(2):  # a job whose pod is lost is sent once more: the queue group picks a pod
            try:
                reply, data = await self._attempt(subject, header, body, deadline)
                break
            except _PodLost as exc:
                lost = exc
                log.warning("speech pod lost a job", subject=subject, reason=str(exc), retry=not attempt,
                            ms=round((loop.time() - started) * 1000))
            except NoResponder:
                raise SpeechProviderError(engine, f"no speech pod serves {subject}") from None
            except TimeoutError:
                raise SpeechProviderError(
                    engine, f"no speech pod answered {subject} within {self.timeout_s:g} s") from None
        else:
            raise SpeechProviderError(engine, f"the speech pods that took {subject} were lost twice: {lost}")
        status = reply.get("status")
        if status == "ok":
            return reply, data
        message = str(reply.get("message") or f"the speech pod answered {status!r}")
        if status == "overloaded":
            raise Overloaded(engine, message)
        if status == "invalid":
            raise SpeechConfigError(message)
        raise SpeechProviderError(engine, message)

    async def _attempt(self, subject: str, header: dict[str, Any], body: bytes,
                       deadline: float) -> tuple[dict[str, Any], bytes]:
        """One try of a job: its final reply and whole body. Raises _PodLost (the pod that took it
        is gone), NoResponder (nobody serves ``subject``) or TimeoutError (``deadline`` passed)."""
        part = self._part_bytes or _part_bytes(self._bus)
        header = {**header, "wait": self.poll_s}
        if len(body) <= part:
            reply, data = await self._request(subject, pack(header, body), deadline, queue=True)
        else:  # the first part to the queue, the rest to the pod that took it
            reply, data = await self._request(subject, pack({**header, "size": len(body)}, body[:part]),
                                              deadline, queue=True)
            for offset in range(part, len(body), part):
                if reply.get("status") != "more":
                    break
                reply, data = await self._request(
                    str(reply["to"]), pack({"transfer": reply["transfer"], "offset": offset},
                                           body[offset:offset + part]), deadline)
        while reply.get("status") == "working":  # the pod runs it: ask again, it answers once done
            reply, data = await self._request(
                str(reply["to"]), pack({"job": reply["job"], "wait": self.poll_s}), deadline)
        if reply.get("status") == "unknown":
            raise _PodLost(str(reply.get("message") or "the speech pod does not know the job"))
        if reply.get("status") == "ok" and int(reply.get("size", len(data))) > len(data):
            parts = [data]
            received = len(data)
            while received < int(reply["size"]):
                more_reply, more = await self._request(str(reply["to"]), pack(
                    {"transfer": reply["transfer"], "offset": received}), deadline)
                if more_reply.get("status") == "unknown" or not more:
                    raise _PodLost("the speech pod lost a result being fetched")
                parts.append(more)
                received += len(more)
            data = b"".join(parts)
        return reply, data

    async def _request(self, subject: str, message: bytes, deadline: float,
                       queue: bool = False) -> tuple[dict[str, Any], bytes]:
        """The reply to one message, within ``poll_s + grace_s`` seconds (a live pod answers within
        ``poll_s``) and before ``deadline``. Raises _PodLost when a pod's own subject (not ``queue``)
        has no responder or when no answer came within the bound, TimeoutError at the deadline."""
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            raise TimeoutError(subject)
        bound = self.poll_s + self.grace_s
        try:
            reply = await self._bus.request(subject, message, min(left, bound))
        except NoResponder:
            if queue:
                raise
            raise _PodLost(f"the speech pod is gone (no responder on {subject})") from None
        except TimeoutError:
            if left <= bound:
                raise
            raise _PodLost(f"the speech pod did not answer on {subject} within {bound:g} s") from None
        try:
            return unpack(reply)
        except ValueError as exc:
            return {"status": "failed", "message": f"malformed reply from a speech pod: {exc}"}, b""


class _PodLost(Exception):
    """The speech pod that took a job is gone (no responder, no answer within the bound, or it does
    not know the job): the job may be sent once more."""


# --- the speech pod's side --------------------------------------------------------------------


@dataclass
class _Transfer:
    """A body arriving in parts (``upload``: ``header`` of its job) or leaving in parts (``download``)."""

    direction: str
    header: dict[str, Any]
    size: int
    parts: list[bytes] = field(default_factory=list)
    received: int = 0
    created: float = field(default_factory=time.monotonic)


@dataclass
class ServedCounts:
    """Jobs a speech pod answered since it started, by kind."""

    stt: int = 0
    stt_interim: int = 0
    tts: int = 0
    failed: int = 0
    shed: int = 0


class SpeechServer:
    """The speech pod's answers (module docstring): STT and TTS requests in the ``voipbin-speech``
    queue group of ``bus``, run on the local engines of ``stt`` and ``tts`` (registries without a
    remote client), large bodies in parts on this pod's transfer subject (``pod_id``)."""

    def __init__(self, bus: RequestReply, *, pod_id: str, stt: SttRegistry, tts: TtsRegistry,
                 namespace: str = NAMESPACE) -> None:
        self._bus = bus
        self.pod_id = pod_id
        self.namespace = namespace
        self._stt = stt
        self._tts = tts
        self._jobs: list[Subscription] = []
        self._transfers_sub: Subscription | None = None
        self._transfers: dict[str, _Transfer] = {}
        self._ids = itertools.count()
        self._transfer_subject = transfer_subject(pod_id, namespace)
        self._running: dict[str, asyncio.Task[bytes]] = {}  # jobs running, or done and not yet answered
        self.in_flight = 0
        self.served = ServedCounts()
        self._idle = asyncio.Event()  # set while ``_running`` is empty
        self._idle.set()

    async def start(self) -> None:
        """Serve the STT and TTS subjects (queue group) and this pod's transfer subject."""
        if self._jobs:
            return
        self._transfers_sub = await self._bus.serve(self._transfer_subject, self._answer_transfer)
        self._jobs = [
            await self._bus.serve(stt_subject("*", self.namespace), self._answer_stt, queue=QUEUE_GROUP),
            await self._bus.serve(tts_subject("*", "*", self.namespace), self._answer_tts, queue=QUEUE_GROUP),
        ]
        log.info("speech pod serving", pod_id=self.pod_id, queue=QUEUE_GROUP)

    async def warm_up(self) -> None:
        """Load what this pod serves at once: piper's voice and whisper's model in their workers (no
        VAD: the streams stay on the media pods; kokoro and the multilingual model load on their
        first request). Logs ``speech engines warm`` when done."""
        await self._tts.get("piper").warm_up()  # type: ignore[attr-defined]
        await self._stt.get("whisper").warm_up(streams=False)  # type: ignore[attr-defined]
        log.info("speech engines warm", engines=["piper", "whisper"])

    async def stop_taking_jobs(self) -> None:
        """Leave the queue group: the server hands new jobs to the other members (returns once it
        knows); the jobs in flight go on, and so do their transfers."""
        jobs, self._jobs = self._jobs, []
        for sub in jobs:
            await sub.unsubscribe()

    async def stop(self, grace_s: float = 10.0) -> None:
        """`stop_taking_jobs`, then wait up to ``grace_s`` seconds for the jobs in flight to finish
        and their replies to be asked for (the transfer subject is served until then); the jobs
        still running then are cancelled."""
        await self.stop_taking_jobs()
        try:
            async with asyncio.timeout(grace_s):
                await self._idle.wait()
        except TimeoutError:
            log.warning("speech jobs still running at stop", in_flight=self.in_flight,
                        unanswered=len(self._running) - self.in_flight)
        for task in self._running.values():
            task.cancel()
        transfers, self._transfers_sub = self._transfers_sub, None
        if transfers is not None:
            await transfers.unsubscribe()
        log.info("speech pod stopped", pod_id=self.pod_id, **self.served.__dict__)

    # --- requests -------------------------------------------------------------------------
    async def _answer_stt(self, message: bytes) -> bytes:
        return await self._answer("stt", message)

    async def _answer_tts(self, message: bytes) -> bytes:
        return await self._answer("tts", message)

    async def _answer(self, kind: str, message: bytes) -> bytes:
        try:
            header, body = unpack(message)
        except ValueError as exc:
            return pack({"status": "invalid", "message": f"malformed speech request: {exc}"})
        header["kind"] = kind
        size = int(header.get("size", len(body)))
        if size > len(body):  # the first part of a large body: the rest comes to this pod
            self._drop_stale()
            transfer_id = f"{next(self._ids)}-{secrets.token_hex(4)}"
            self._transfers[transfer_id] = _Transfer("upload", header, size, [body], len(body))
            return pack({"status": "more", "to": self._transfer_subject, "transfer": transfer_id})
        return await self._take(header, body)

    async def _answer_transfer(self, message: bytes) -> bytes:
        try:
            header, body = unpack(message)
            if "job" in header:  # a requester asking for a job this pod runs
                return await self._reply(str(header["job"]), header.get("wait"))
            transfer = self._transfers.get(str(header["transfer"]))
            offset = int(header["offset"])
        except (ValueError, KeyError, TypeError) as exc:
            return pack({"status": "invalid", "message": f"malformed speech transfer: {exc}"})
        if transfer is None:
            return pack({"status": "unknown", "message": "the speech transfer expired or is unknown"})
        transfer_id = str(header["transfer"])
        if transfer.direction == "download":
            data = transfer.parts[0]
            part = data[offset:offset + _part_bytes(self._bus)]
            if offset + len(part) >= len(data):
                self._transfers.pop(transfer_id, None)
            return pack({"status": "ok"}, part)
        if offset != transfer.received:
            self._transfers.pop(transfer_id, None)
            return pack({"status": "failed", "message": f"speech transfer part at {offset}, "
                                                        f"expected {transfer.received}"})
        transfer.parts.append(body)
        transfer.received += len(body)
        if transfer.received < transfer.size:
            return pack({"status": "more", "to": self._transfer_subject, "transfer": transfer_id})
        self._transfers.pop(transfer_id, None)
        return await self._take(transfer.header, b"".join(transfer.parts))

    async def _take(self, header: dict[str, Any], body: bytes) -> bytes:
        """Start a job in its own task (it outlives the request: a requester asks for it again on
        the transfer subject); its reply within the request's ``wait`` seconds, else ``working``."""
        job_id = f"{next(self._ids)}-{secrets.token_hex(4)}"
        task = asyncio.get_running_loop().create_task(self._run(header, body))
        self._running[job_id] = task
        self._idle.clear()
        task.add_done_callback(
            lambda _: asyncio.get_running_loop().call_later(RESULT_TTL_S, self._forget, job_id))
        return await self._reply(job_id, header.get("wait"))

    async def _reply(self, job_id: str, wait: Any) -> bytes:
        """Job ``job_id``'s reply once done (then forgotten), or ``working`` after ``wait`` seconds
        (None: no bound, a requester without liveness polls); ``unknown`` for a job this pod lacks."""
        task = self._running.get(job_id)
        if task is None:
            return pack({"status": "unknown", "message": f"this speech pod has no job {job_id} "
                                                         f"(restarted, or its reply was dropped)"})
        timeout = min(max(0.0, float(wait)), MAX_WAIT_S) if isinstance(wait, (int, float)) else None
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done:
            return pack({"status": "working", "to": self._transfer_subject, "job": job_id})
        self._forget(job_id)
        if task.cancelled():  # stopped past its grace: lost to this pod, another may run it
            return pack({"status": "unknown", "message": "the speech pod stopped before the job finished"})
        return task.result()

    def _forget(self, job_id: str) -> None:
        self._running.pop(job_id, None)
        if not self._running:
            self._idle.set()

    def _drop_stale(self) -> None:
        cutoff = time.monotonic() - TRANSFER_TTL_S
        for transfer_id in [t for t, x in self._transfers.items() if x.created < cutoff]:
            del self._transfers[transfer_id]

    async def _run(self, header: dict[str, Any], body: bytes) -> bytes:
        """Run one job; its reply (a large result's first part, the rest left for download)."""
        self.in_flight += 1
        started = time.perf_counter()
        try:
            reply, data = await self._job(header, body)
        finally:
            self.in_flight -= 1
        status = reply["status"]
        kind = header["kind"]
        if status == "ok":
            if kind == "tts":
                self.served.tts += 1
            elif header.get("interim"):
                self.served.stt_interim += 1
            else:
                self.served.stt += 1
        elif status == "overloaded":
            self.served.shed += 1
        else:
            self.served.failed += 1
        (log.debug if header.get("interim") else log.info)(
            "speech job served", kind=kind, status=status, interim=bool(header.get("interim")),
            ms=round((time.perf_counter() - started) * 1000, 1), bytes_in=len(body), bytes_out=len(data))
        part = _part_bytes(self._bus)
        if len(data) > part:  # the rest of a large result is fetched from this pod
            self._drop_stale()
            transfer_id = f"{next(self._ids)}-{secrets.token_hex(4)}"
            self._transfers[transfer_id] = _Transfer("download", {}, len(data), [data])
            return pack({**reply, "size": len(data), "to": self._transfer_subject, "transfer": transfer_id},
                        data[:part])
        return pack(reply, data)

    async def _job(self, header: dict[str, Any], body: bytes) -> tuple[dict[str, Any], bytes]:
        try:
            if header["kind"] == "stt":
                return {"status": "ok", "text": await self._transcribe(header, body)}, b""
            return {"status": "ok"}, await self._synthesize(header)
        except Overloaded as exc:
            return {"status": "overloaded", "message": str(exc)}, b""
        except SpeechConfigError as exc:
            return {"status": "invalid", "message": str(exc)}, b""
        except SpeechProviderError as exc:
            return {"status": "failed", "message": str(exc)}, b""
        except Exception as exc:
            log.exception("speech job failed", kind=header.get("kind"))
            return {"status": "failed", "message": f"the speech pod failed the job: {type(exc).__name__}"}, b""

    async def _transcribe(self, header: dict[str, Any], pcm: bytes) -> str:
        language = str(header["language"])
        recognizer = await asyncio.to_thread(self._stt.local_for, language)  # may build the multilingual model
        wanted = str(header.get("model") or "")
        model = getattr(recognizer, "model_token", "")
        if wanted and model and wanted != model:
            raise SpeechConfigError(f"language: this speech pod hears {language} with model {model}, not {wanted}")
        return str(await recognizer.transcribe(pcm, language=language, interim=bool(header.get("interim"))))

    async def _synthesize(self, header: dict[str, Any]) -> bytes:
        engine = str(header["engine"])
        synthesizer = await asyncio.to_thread(self._tts.get, engine)
        sentence = getattr(synthesizer, "synthesize_sentence", None)
        if sentence is None:
            raise SpeechConfigError(f"provider: a speech pod does not run {engine}")
        voice = str(header.get("voice") or "")
        if voice and voice != getattr(synthesizer, "remote_voice", voice):
            raise SpeechConfigError(f"voice_id: this speech pod's {engine} voice is "
                                    f"{synthesizer.remote_voice}, not {voice}")
        speaker = header.get("speaker")
        return bytes(await sentence(str(header["text"]), speaker if speaker else None))
