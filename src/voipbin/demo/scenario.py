"""``voipbin demo``: the seeds' Real-Time Voice Interaction scenario (seed 000), end to end, for real.

It starts the embedded platform in this process, registers a real softphone (baresip) to a new
extension, subscribes to events over the WebSocket, and then drives the public REST API with
the seed's JSON bodies: a call with ``transcribe_start``/``talk``/``sleep``; the phone speaks a
real human recording after the greeting; a speaking session says two sentences, is flushed in
the middle of the second, says a third, stops; the call is deleted. A summary shows every
transcript, what the phone heard (transcribed from its recording) and the measured latencies.
Each step either happens or the demo stops there, naming the step and why (exit code 1).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import tempfile
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvicorn
import websockets
from rich.console import Console
from rich.table import Table

from voipbin.config import Settings
from voipbin.demo.baresip import BaresipPhone
from voipbin.events.websocket_hub import UVICORN_WS_OPTIONS

LIBRIVOX_DIR = Path("/usr/share/pocketsphinx/test/data/librivox")
# A LibriVox reading of "Sense and Sensibility" (public domain), shipped with its transcript by the
# Debian package pocketsphinx-testdata (BSD-2-Clause, Carnegie Mellon University).
CALLER_RECORDING = "sense_and_sensibility_01_austen_64kb-0880"
GREETING = ("Hello. This is the VoIPBIN real-time voice interaction test. You can speak now and your speech "
            "will be transcribed. The call will stay open for you to test the Speaking API.")
SAY_FIRST = "Hello, how are you today? This is VoIPBIN speaking to you in real time."
SAY_SECOND = ("This second sentence is deliberately long, because the demo interrupts it with a flush "
              "before it can finish, exactly like a caller barging in on an agent that talks too much.")
SAY_THIRD = "After the flush, the session is still active and speaks this third sentence."
FRAME_S = 0.02


class StepFailed(RuntimeError):
    def __init__(self, step: str, why: str) -> None:
        super().__init__(f"{step}: {why}")
        self.step = step
        self.why = why


@dataclass
class Timeline:
    """What the demo saw and measured."""

    transcripts: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    latencies: dict[str, float] = field(default_factory=dict)
    heard_text: str = ""
    events: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)


def _words(text: str) -> set[str]:
    return {w.strip(".,?!'\"").lower() for w in text.split()} - {""}


def _sounds_like(message: str, sentence: str, share: float = 0.5) -> bool:
    """True when at least ``share`` of ``sentence``'s words are in ``message`` (ASR is not exact)."""
    target = _words(sentence)
    return len(target & _words(message)) >= share * len(target)


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _caller_speech(workdir: Path) -> tuple[Path, str, float]:
    """The caller's line as an 8 kHz WAV (speech then silence), its transcript, its speech length (s)."""
    source = LIBRIVOX_DIR / f"{CALLER_RECORDING}.wav"
    if not source.exists():
        raise StepFailed("prepare audio", f"{source} is missing (Debian package pocketsphinx-testdata)")
    transcript = ""
    for line in (LIBRIVOX_DIR / "transcription").read_text().splitlines():
        if f"({CALLER_RECORDING})" in line:
            transcript = line.split("</s>")[0].replace("<s>", "").strip().lower()
    with wave.open(str(source)) as w:
        seconds = w.getnframes() / w.getframerate()
    out = workdir / "caller.wav"
    subprocess.run(["sox", str(source), "-r", "8000", "-c", "1", "-b", "16", str(out), "pad", "0", "60"], check=True)
    return out, transcript, seconds


def _silence(workdir: Path) -> Path:
    out = workdir / "silence.wav"
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(out), "trim", "0", "120"], check=True)
    return out


class Demo:
    def __init__(self, console: Console, workdir: Path) -> None:
        self.console = console
        self.workdir = workdir
        self.api_port = _free_port()
        self.settings = Settings(
            database_url=f"sqlite+aiosqlite:///{workdir / 'voipbin.db'}", api_port=self.api_port,
            sip_port=_free_port(socket.SOCK_DGRAM), webhook_allow_private=True, _env_file=None)  # type: ignore[call-arg]
        self.base = f"http://127.0.0.1:{self.api_port}"
        self.timeline = Timeline()
        self.http = httpx.AsyncClient(base_url=self.base, timeout=30)
        self.token = ""
        self.runtime: Any = None
        self.phone: BaresipPhone | None = None

    # ------------------------------------------------------------------ helpers

    def say(self, what: str, style: str = "") -> None:
        self.console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {what}", style=style)

    async def api(self, method: str, path: str, step: str, **kw: Any) -> Any:
        r = await self.http.request(method, f"/v1.0{path}", params={"token": self.token}, **kw)
        if r.status_code >= 300:
            raise StepFailed(step, f"{method} {path} answered {r.status_code}: {r.text}")
        return r.json()

    async def next_event(self, step: str, predicate: Any, timeout: float) -> dict[str, Any]:
        async def find() -> dict[str, Any]:
            while True:
                event = await self.timeline.events.get()
                if predicate(event):
                    return event
        try:
            return await asyncio.wait_for(find(), timeout)
        except TimeoutError:
            raise StepFailed(step, f"no matching event within {timeout:.0f}s") from None

    # ------------------------------------------------------------------ steps

    async def start_platform(self) -> None:
        from voipbin.api.app import create_app
        from voipbin.runtime import Runtime
        from voipbin.store.migrate import upgrade_async

        await upgrade_async(self.settings.database_url)
        self.runtime = Runtime(self.settings)
        await self.runtime.start()
        await self.runtime.warm_up()  # the greeting should not wait for the voice model to load
        seed = await self.runtime.seed_sandbox()
        config = uvicorn.Config(create_app(self.runtime), host="127.0.0.1", port=self.api_port, log_config=None,
                                access_log=False, lifespan="off", **UVICORN_WS_OPTIONS)
        self.server = uvicorn.Server(config)
        self.server_task = asyncio.get_running_loop().create_task(self.server.serve())
        while not self.server.started:
            if self.server_task.done():
                raise StepFailed("start platform", f"API server exited: {self.server_task.exception()}")
            await asyncio.sleep(0.05)  # uvicorn exposes no start event
        r = await self.http.post("/auth/login", json={"username": seed.username, "password": seed.password})
        if r.status_code != 200:
            raise StepFailed("login", r.text)
        self.token = r.json()["token"]
        self.customer_id = seed.customer_id
        self.source_number = seed.number
        self.say(f"platform up: API {self.base}, SIP 127.0.0.1:{self.runtime.sip.port}, customer {seed.customer_id}")

    async def register_phone(self) -> None:
        ext = await self.api("POST", "/extensions", "create extension", json={
            "name": "quickstart-phone", "detail": "Quickstart softphone extension",
            "extension": "quickstart1", "password": "your-secure-password-here"})
        self.phone = BaresipPhone(self.workdir / "phone", user="quickstart1",
                                  domain=f"{self.customer_id}.registrar.{self.settings.sip_domain}",
                                  password="your-secure-password-here", proxy=("127.0.0.1", self.runtime.sip.port),
                                  audio_file=_silence(self.workdir))
        try:
            await self.phone.start()
            await self.phone.wait_event("REGISTER_OK")
        except Exception as exc:
            raise StepFailed("register softphone", str(exc)) from exc
        got = await self.api("GET", f"/extensions/{ext['id']}", "check registration")
        if not got.get("registered"):
            raise StepFailed("check registration", "the extension shows no registered contact")
        self.say(f"softphone registered: {got['contacts'][0]['uri']} ({got['contacts'][0]['user_agent']})",
                 "green")

    async def subscribe(self) -> None:
        url = f"ws://127.0.0.1:{self.api_port}/v1.0/ws?token={self.token}"
        self.ws = await websockets.connect(url)
        await self.ws.send(json.dumps({"type": "subscribe", "topics": [
            f"customer_id:{self.customer_id}:call:*", f"customer_id:{self.customer_id}:transcribe:*",
            f"customer_id:{self.customer_id}:speaking:*"]}))
        self.ws_task = asyncio.get_running_loop().create_task(self._read_ws())
        self.say("subscribed to call, transcribe and speaking events over the WebSocket")

    async def _read_ws(self) -> None:
        async for raw in self.ws:
            message = json.loads(raw)
            message["received_at"] = time.monotonic()
            kind = message.get("event_type", "")
            data = message.get("data") or {}
            if kind.startswith("call_") and kind != "call_updated":
                self.timeline.statuses.append(data.get("status", ""))
                self.say(f"[EVENT] {kind:<18} status={data.get('status')}", "cyan")
            elif kind == "transcript_created":
                self.timeline.transcripts.append(data)
                colour = "magenta" if data.get("direction") == "out" else "yellow"
                self.say(f"[TRANSCRIBE {data.get('direction')}] {data.get('message')}", colour)
            elif kind == "transcribe_speech_interim":
                self.say(f"   ... {data.get('message') or data.get('text', '')}", "dim")
            elif kind.startswith(("speaking_", "transcribe_")):
                self.say(f"[EVENT] {kind}", "blue")
            self.timeline.events.put_nowait(message)

    async def call(self) -> None:
        created = await self.api("POST", "/calls", "make the call", json={
            "source": {"type": "tel", "target": self.source_number},
            "destinations": [{"type": "extension", "target_name": "quickstart-phone"}],
            "actions": [
                {"type": "transcribe_start", "option": {"language": "en-US"}},
                {"type": "talk", "option": {"text": GREETING, "gender": "female", "language": "en-US"}},
                {"type": "sleep", "option": {"duration": 600000}},
            ]})
        self.call_id = created["calls"][0]["id"]
        self.say(f"POST /calls -> call {self.call_id} ({created['calls'][0]['status']})")
        await self.next_event("call answered", lambda e: e.get("event_type") == "call_progressing"
                              and e["data"]["id"] == self.call_id, 30)

    async def caller_speaks(self) -> None:
        # the greeting is over once the flow has moved on to its ``sleep`` action
        await self.next_event("greeting played", lambda e: e.get("event_type") == "call_updated"
                              and (e["data"].get("action") or {}).get("type") == "sleep", 60)
        if not any(t.get("direction") == "out" for t in self.timeline.transcripts):
            await self.next_event("greeting transcribed (direction out)", lambda e: e.get("event_type") ==
                                  "transcript_created" and e["data"].get("direction") == "out", 30)
        wav, self.caller_text, seconds = _caller_speech(self.workdir)
        assert self.phone is not None
        await self.phone.command("ausrc", f"aufile,{wav}")
        speech_end = time.monotonic() + seconds
        self.say(f"the softphone speaks a human recording ({seconds:.1f} s): \"{self.caller_text}\"", "yellow")
        event = await self.next_event("caller transcribed (direction in)", lambda e: e.get("event_type") ==
                                      "transcript_created" and e["data"].get("direction") == "in", 60)
        self.timeline.latencies["end of speech -> transcript_created (ms)"] = (
            (event["received_at"] - speech_end) * 1000)

    async def speak(self) -> None:
        speaking = await self.api("POST", "/speakings", "create speaking", json={
            "reference_type": "call", "reference_id": self.call_id, "language": "en-US", "direction": "out"})
        self.speaking_id = speaking["id"]
        self.say(f"POST /speakings -> {speaking['status']}")
        await self.next_event("speaking active", lambda e: e.get("event_type") == "speaking_started", 30)
        media = self.runtime.calls.media_of(self.call_id)
        first_audio: list[float] = []

        def tap(frame: bytes) -> None:  # the RTP sender's view: first packet carrying speech
            if not first_audio and np.abs(np.frombuffer(frame, dtype="<i2")).max() > 500:
                first_audio.append(time.monotonic())
        if media is not None:
            media.add_outbound_tap(tap)
        said_at = time.monotonic()
        await self.api("POST", f"/speakings/{self.speaking_id}/say", "say", json={"text": SAY_FIRST})
        await self.next_event("first sentence spoken", lambda e: e.get("event_type") == "transcript_created"
                              and e["data"].get("direction") == "out"
                              and _sounds_like(e["data"]["message"], SAY_FIRST, 0.3), 30)
        if first_audio:
            self.timeline.latencies["/say -> first speech RTP packet (ms)"] = (first_audio[0] - said_at) * 1000
        await self.api("POST", f"/speakings/{self.speaking_id}/say", "say (long)", json={"text": SAY_SECOND})
        await asyncio.sleep(3.0)  # let the long sentence play for a while, then barge in
        await self.api("POST", f"/speakings/{self.speaking_id}/flush", "flush")
        self.say("POST /speakings/{id}/flush in the middle of the second sentence", "red")
        await asyncio.sleep(1.0)
        await self.api("POST", f"/speakings/{self.speaking_id}/say", "say after flush", json={"text": SAY_THIRD})
        await self.next_event("third sentence spoken", lambda e: e.get("event_type") == "transcript_created"
                              and _sounds_like(e["data"].get("message", ""), SAY_THIRD), 40)
        await self.api("POST", f"/speakings/{self.speaking_id}/stop", "stop speaking")
        await self.next_event("speaking stopped", lambda e: e.get("event_type") == "speaking_stopped", 15)
        if media is not None:
            media.remove_outbound_tap(tap)

    async def hang_up(self) -> None:
        await self.api("DELETE", f"/calls/{self.call_id}", "delete call")
        assert self.phone is not None
        with contextlib.suppress(Exception):
            await self.phone.wait_event("CALL_CLOSED", 10)
        self.say("DELETE /calls/{id}: the call is over", "green")

    async def check_heard(self) -> None:
        """Transcribe the softphone's own recording: the TTS was heard, the flushed sentence was cut."""
        from voipbin.media.pcm import resample
        from voipbin.speech.settings import SpeechSettings
        from voipbin.speech.stt.whisper import WhisperRecognizer

        assert self.phone is not None
        recordings = self.phone.recordings("dec")
        if not recordings:
            raise StepFailed("phone recording", "baresip wrote no recording")
        with wave.open(str(recordings[-1])) as w:
            pcm, rate = w.readframes(w.getnframes()), w.getframerate()
        self.timeline.heard_text = await WhisperRecognizer(SpeechSettings()).transcribe(
            resample(pcm, rate, 16000), language="en-US")
        heard = self.timeline.heard_text
        if not (_sounds_like(heard, SAY_FIRST) and _sounds_like(heard, SAY_THIRD)):
            raise StepFailed("phone heard the speaking", f"its recording says: {heard!r}")
        tail = " ".join(SAY_SECOND.split()[-8:])  # "...exactly like a caller barging in on an agent that talks too much."
        if _sounds_like(heard, tail, 0.6):
            raise StepFailed("flush cut the second sentence", f"the end of the flushed sentence was heard: {heard!r}")

    async def close(self) -> None:
        for name in ("ws_task",):
            task = getattr(self, name, None)
            if task is not None:
                task.cancel()
        if getattr(self, "ws", None) is not None:
            await self.ws.close()
        if self.phone is not None:
            await self.phone.stop()
        if getattr(self, "server", None) is not None:
            self.server.should_exit = True
            await self.server_task
        if self.runtime is not None:
            await self.runtime.stop()
        await self.http.aclose()

    def summary(self) -> None:
        table = Table(title="Transcripts")
        table.add_column("direction")
        table.add_column("message")
        for t in self.timeline.transcripts:
            table.add_row(t.get("direction", ""), t.get("message", ""))
        self.console.print(table)
        self.console.print(f"[bold]The softphone heard:[/bold] {self.timeline.heard_text}")
        latency = Table(title="Latencies")
        latency.add_column("measure")
        latency.add_column("ms", justify="right")
        for name, value in self.timeline.latencies.items():
            latency.add_row(name, f"{value:.0f}")
        self.console.print(latency)


async def run_demo(console: Console, workdir: Path | None = None) -> int:
    """Run the scenario; 0 when every step happened, else 1 with the failed step named."""
    with tempfile.TemporaryDirectory(prefix="voipbin-demo-") as tmp:
        demo = Demo(console, workdir or Path(tmp))
        steps = [demo.start_platform, demo.register_phone, demo.subscribe, demo.call, demo.caller_speaks,
                 demo.speak, demo.hang_up, demo.check_heard]
        try:
            for step in steps:
                await step()
        except StepFailed as failure:
            console.print(f"[bold red]demo failed at step '{failure.step}':[/bold red] {failure.why}")
            return 1
        finally:
            await demo.close()
        demo.summary()
        console.print("[bold green]demo completed: every step happened[/bold green]")
        return 0
