"""Transcription capacity: N simultaneous calls, every caller speaking continuously, each transcribed.

Run: .venv/bin/python bench/transcribe_capacity.py [--calls 1,2,4,8,16,32] [--utterances 3] [--quick] [--idle]
     [--set VOIPBIN_NAME=VALUE ...]

What users run: a ``voipbin sandbox`` process (tests/tests_support/processes.py; SQLite, its own whisper,
VAD and piper workers) whose trunk is this process's SIP UA (the carrier). The seed number's flow is
``answer`` + ``transcribe_start`` (``direction: in``) + ``sleep``. For each N the carrier places N calls
(real INVITE and G.711 RTP on 127.0.0.1); once every transcribe is ``progressing``, every caller says
``--utterances`` LibriVox sentences (Debian pocketsphinx-testdata, 3 to 7 s each) one after the other with
1 s of silence between them, the callers' starts spread over one second. Events come over the API's
WebSocket (``customer_id:<id>:transcribe``), timed on arrival in this process.

Per N, printed:

* end of speech (the caller's last voiced frame of a sentence, RMS above 300) -> its ``transcript_created``
  at the WebSocket client: p50 / p90 / max (when a sentence comes back as several transcripts, its last);
* interims: ``transcribe_speech_interim`` events per sentence (interim text is shed first under load);
* missing: sentences with neither a ``transcript_created`` nor a ``transcript_dropped`` (the documented
  overload event) within ``--wait`` seconds of the last end of speech; dropped: sentences with only a
  ``transcript_dropped``, by reason;
* CPU: cores used by the sandbox (server and every worker process: utime + stime over the speaking
  window), and by this process (the callers); PSS of the sandbox's processes (peak, sampled every second);
* the load average before the round (the machine may be shared: figures are noisy when it is not ~0).

Reference, measured in the same run before the sandbox starts: the bare engine, i.e. the same sentences
through faster-whisper directly in one process with the sandbox's model options (``inference.transcribe``,
one after the other): utterances/s, and the number of continuously speaking calls that rate could serve
if transcription were the only work (one sentence per call every mean sentence + 1 s).

``--quick``: N = 1, 4, 16 with 2 sentences each (about 2 minutes).

Memory (issue 20: the idle sandbox <= 600 MB PSS): PSS per process of the sandbox (``/proc/<pid>/smaps_rollup``;
the server, each worker pool by command name and niceness: ``vb-whisper nice 5`` finals, ``nice 15`` interims,
``vb-vad``, ``vb-piper``; a multiprocessing resource tracker, if any) and the total, once its start-up warm-up is done
(idle, no call yet) and after the rounds. Reference beside it: the PSS of this process once the bare engine ran
(one interpreter with faster-whisper and the model loaded). ``--idle``: no rounds; one call that hears a ``talk``
(piper) and is transcribed, then PSS right after it and again once idle workers are retired
(``VOIPBIN_SPEECH_WORKER_IDLE_RETIRE_S`` + 5 s, about 1.5 minutes in all).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "integration" / "inbound"))

from inbound_support import Voice, place_call  # noqa: E402
from support import children, sandbox_with_trunk  # noqa: E402
from tests_support.frame_log import VOICED_RMS  # noqa: E402
from voipbin.media.players import BufferPlayer, read_wav  # noqa: E402
from voipbin.media.pcm import SAMPLE_RATE_HZ, resample_pcm16  # noqa: E402
from voipbin.sip.ua import UserAgent  # noqa: E402

LIBRIVOX = sorted(Path("/usr/share/pocketsphinx/test/data/librivox").glob("*.wav"))
GAP_S = 1.0
FRAME = SAMPLE_RATE_HZ // 50  # samples per 20 ms frame
TARGET = "16 calls: p50 <= 1000 ms, p90 <= 1500 ms, none missing"


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


# ---------------------------------------------------------------------- processes: CPU and PSS


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children(p)
    return out


def cpu_by_process(pids: list[int], server: int) -> dict[str, float]:
    """utime + stime in seconds of ``pids``, summed per kind of process: ``server``, and each worker
    pool by its command name (``vb-whisper``, ``vb-vad`` ...; see voipbin.speech.worker_process) and
    niceness (the interim whisper workers are nicer than the final ones)."""
    out: dict[str, float] = {}
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                head, fields = f.read().rsplit(")", 1)
            fields = fields.split()
            name = "server" if p == server else f"{head.split('(', 1)[1]} nice {fields[16]}"
            out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            pass
    return out


def renice(pids: list[int], delta: int) -> None:
    """Add ``delta`` to the niceness of every thread of ``pids`` (their differences are kept)."""
    for p in pids:
        for tid in (int(t) for t in os.listdir(f"/proc/{p}/task")):
            os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + delta)


def pss_by_process(pids: list[int], server: int) -> list[tuple[str, float]]:
    """(kind, PSS MiB) of each process: ``server``, a worker pool by command name and niceness, or the
    resource tracker; largest first."""
    out = []
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                head, fields = f.read().rsplit(")", 1)
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmd = f.read()
            name = head.split("(", 1)[1]
            kind = ("server" if p == server else "resource tracker" if b"resource_tracker" in cmd
                    else f"{name} nice {fields.split()[16]}")
            out.append((kind, pss_mib([p])))
        except (OSError, IndexError):
            pass
    return sorted(out, key=lambda kv: -kv[1])


def print_pss(label: str, pid: int) -> float:
    """Print the PSS of ``pid``'s process tree, per process and in total; returns the total (MiB)."""
    procs = pss_by_process(tree(pid), pid)
    total = sum(v for _, v in procs)
    print(f"PSS {label}: {total:.0f} MiB over {len(procs)} processes ("
          + ", ".join(f"{k} {v:.0f}" for k, v in procs) + ")", flush=True)
    return total


def settle(pid: int, timeout: float = 90.0) -> None:
    """Wait until ``pid``'s process tree is quiet: the same processes, using under 0.1 core, for 2 s
    (its workers started and their models loaded; a readiness poll: there is no event to await)."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        pids = tree(pid)
        now = (sorted(pids), sum(cpu_by_process(pids, pid).values()), time.monotonic())
        if last and now[0] == last[0] and (now[1] - last[1]) / (now[2] - last[2]) < 0.1:
            return
        last = now
        time.sleep(2.0)


def pss_mib(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("Pss:"))
        except (OSError, StopIteration, ValueError):
            pass
    return total / 1024


# ---------------------------------------------------------------------- the reference: the bare engine


def bare_engine() -> tuple[float, float, float]:
    """(utterances/s, CPU seconds per utterance, mean sentence seconds): the sentences through
    faster-whisper in this process."""
    from voipbin.speech import inference
    from voipbin.speech.settings import SpeechSettings
    from voipbin.speech.stt.whisper import bundled_model_path

    s = SpeechSettings()
    options = inference.WhisperOptions(model=s.whisper_model or str(bundled_model_path()),
                                       compute_type=s.whisper_compute_type, cpu_threads=s.whisper_cpu_threads,
                                       beam_size=s.whisper_beam_size, max_new_tokens=s.whisper_max_new_tokens,
                                       min_window_s=s.whisper_min_window_s)
    pcms = []
    for path in LIBRIVOX:
        samples, rate = read_wav(path)
        pcms.append(resample_pcm16(samples, rate, 16000).tobytes())
    inference.transcribe(options, pcms[0], "en")  # load and warm up
    start, cpu, count = time.perf_counter(), time.process_time(), 0
    for _ in range(3):
        for pcm in pcms:
            inference.transcribe(options, pcm, "en")
            count += 1
    elapsed = time.perf_counter() - start
    return count / elapsed, (time.process_time() - cpu) / count, statistics.mean(len(p) / 32000 for p in pcms)


def bare_model() -> None:
    """Load the sandbox's whisper model in this process and transcribe one sentence (``--idle``'s reference)."""
    from voipbin.speech import inference
    from voipbin.speech.settings import SpeechSettings
    from voipbin.speech.stt.whisper import bundled_model_path

    s = SpeechSettings()
    options = inference.WhisperOptions(model=s.whisper_model or str(bundled_model_path()),
                                       compute_type=s.whisper_compute_type, cpu_threads=s.whisper_cpu_threads,
                                       beam_size=s.whisper_beam_size, max_new_tokens=s.whisper_max_new_tokens,
                                       min_window_s=s.whisper_min_window_s)
    samples, rate = read_wav(LIBRIVOX[0])
    inference.transcribe(options, resample_pcm16(samples, rate, 16000).tobytes(), "en")


# ---------------------------------------------------------------------- one caller


@dataclass
class Sentence:
    call: int
    index: int
    span: tuple[int, int]  # frames of the caller's script
    start: float = 0.0  # wall clock: first and last voiced frame sent
    end: float = 0.0
    transcripts: list[tuple[float, str]] = field(default_factory=list)  # (arrival, text)
    ended: list[float] = field(default_factory=list)  # arrivals of transcribe_speech_ended
    dropped: list[str] = field(default_factory=list)  # reasons


@dataclass
class Caller:
    index: int
    sentences: list[Sentence]
    script: np.ndarray
    voice: Voice = field(default_factory=Voice)
    call: Any = None
    call_id: str = ""
    transcribe_id: str = ""
    first_frame: int = 0
    player: BufferPlayer | None = None
    events: list[tuple[float, str, float, str]] = field(default_factory=list)  # (arrival, type, tm_transcript, text)
    interims: int = 0

    def assign(self) -> None:
        """Each transcript (or drop) to the sentence it belongs to: the last one started before its
        ``tm_transcript`` (the VAD's start of speech), with half a second of slack."""
        for s in self.sentences:
            s.transcripts, s.dropped, s.ended = [], [], []
        for arrival, kind, at, text in self.events:
            spoken = [s for s in self.sentences if s.start - 0.5 <= at]
            if spoken and kind == "transcribe_speech_ended":
                spoken[-1].ended.append(arrival)
            elif spoken and kind == "transcript_created":
                spoken[-1].transcripts.append((arrival, text))
            elif spoken:
                spoken[-1].dropped.append(text)


def script_for(index: int, utterances: int, lead_s: float) -> Caller:
    """``utterances`` sentences from LibriVox (a different first one per caller), 1 s apart, after ``lead_s``."""
    parts = [np.zeros(int(lead_s * SAMPLE_RATE_HZ) // FRAME * FRAME, dtype=np.int16)]
    sentences, at = [], len(parts[0]) // FRAME
    for i in range(utterances):
        samples, rate = read_wav(LIBRIVOX[(index + i) % len(LIBRIVOX)])
        pcm = resample_pcm16(samples, rate, SAMPLE_RATE_HZ)
        pcm = np.concatenate([pcm, np.zeros(-len(pcm) % FRAME, dtype=np.int16)])
        gap = np.zeros(int(GAP_S * SAMPLE_RATE_HZ), dtype=np.int16)
        sentences.append(Sentence(index, i, (at, at + len(pcm) // FRAME)))
        parts += [pcm, gap]
        at += (len(pcm) + len(gap)) // FRAME
    return Caller(index, sentences, np.concatenate(parts))


def _stamp(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


# ---------------------------------------------------------------------- the run


class Bench:
    def __init__(self, api: httpx.AsyncClient, trunk: UserAgent, sip_port: int, number: str, sandbox_pid: int,
                 args: argparse.Namespace) -> None:
        self.api, self.trunk, self.sip_port, self.number, self.sandbox_pid = api, trunk, sip_port, number, sandbox_pid
        self.args = args
        self.progressing: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.by_transcribe: dict[str, Caller] = {}
        self.changed = asyncio.Event()
        self.late = 0

    def on_event(self, msg: dict[str, Any]) -> None:
        now, kind, data = time.time(), msg["event_type"], msg["data"]
        if kind == "transcribe_progressing":
            self.progressing.put_nowait(data)
            return
        if kind not in ("transcript_created", "transcript_dropped", "transcribe_speech_ended",
                        "transcribe_speech_interim"):
            return
        caller = self.by_transcribe.get(data.get("transcribe_id", ""))
        if caller is None:
            self.late += 1
            return
        if kind == "transcribe_speech_interim":
            caller.interims += 1
            return
        at = _stamp(data.get("tm_transcript") or data["tm_event"])
        caller.events.append((now, kind, at, data.get("message") or data.get("reason", "")))
        self.changed.set()

    async def round(self, n: int, utterances: int) -> dict[str, Any]:
        callers = [script_for(i, utterances, lead_s=(i * 1.0 / n)) for i in range(n)]
        for caller in callers:  # one at a time: the next transcribe_progressing is this call's
            caller.call = await place_call(self.trunk, SimpleNamespace(sip=SimpleNamespace(port=self.sip_port)),
                                           self.number, caller.voice)
            await asyncio.wait_for(caller.call.answered.wait(), 15)
            data = await asyncio.wait_for(self.progressing.get(), 15)
            caller.transcribe_id, caller.call_id = data["id"], data["reference_id"]
            self.by_transcribe[caller.transcribe_id] = caller
        load = os.getloadavg()
        pids = tree(self.sandbox_pid)
        offset = time.time() - asyncio.get_running_loop().time()  # loop clock -> wall clock
        cpu0, own0, wall0 = cpu_by_process(pids, self.sandbox_pid), time.process_time(), time.monotonic()
        for caller in callers:
            caller.player = BufferPlayer(caller.script)
            caller.first_frame = caller.voice.say(caller.player)
        peak = 0.0
        spoken_to = time.monotonic() + len(callers[-1].script) / SAMPLE_RATE_HZ + 1
        while time.monotonic() < spoken_to:
            peak = max(peak, pss_mib(tree(self.sandbox_pid)))
            await asyncio.sleep(1.0)  # a sampling period, not a wait for an event
        await asyncio.gather(*(c.player.wait() for c in callers if c.player is not None))
        for caller in callers:
            frames = caller.voice.sent.frames[caller.first_frame:]
            for s in caller.sentences:
                voiced = [at for at, level in frames[s.span[0]:s.span[1]] if level > VOICED_RMS]
                s.start, s.end = voiced[0] + offset, voiced[-1] + offset
        sentences = [s for c in callers for s in c.sentences]
        last_end = max(s.end for s in sentences)

        def accounted() -> bool:
            for caller in callers:
                caller.assign()
            return all(s.dropped or (s.transcripts and max(t for t, _ in s.transcripts) > s.end) for s in sentences)

        while not accounted() and time.time() < last_end + self.args.wait:
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), max(0.1, last_end + self.args.wait - time.time()))
            except TimeoutError:
                break
        accounted()
        cpu1 = cpu_by_process(tree(self.sandbox_pid), self.sandbox_pid)
        own1, wall1 = time.process_time(), time.monotonic()
        cores = {k: (v - cpu0.get(k, 0.0)) / (wall1 - wall0) for k, v in sorted(cpu1.items())}
        peak = max(peak, pss_mib(tree(self.sandbox_pid)))
        for caller in callers:
            await self.api.post(f"/v1.0/calls/{caller.call_id}/hangup")
            caller.call.rtp.close()
            self.by_transcribe.pop(caller.transcribe_id, None)
        latencies = [max(t for t, _ in s.transcripts) - s.end for s in sentences if s.transcripts]
        ended = [max(s.ended) - s.end for s in sentences if s.ended]
        dropped: dict[str, int] = {}
        for s in sentences:
            if s.dropped and not s.transcripts:
                for reason in set(s.dropped):
                    dropped[reason] = dropped.get(reason, 0) + 1
        return {"n": n, "sentences": len(sentences), "latencies": latencies, "ended": ended, "dropped": dropped,
                "missing": sum(1 for s in sentences if not s.transcripts and not s.dropped),
                "cores": sum(cores.values()), "by_process": cores, "interims": sum(c.interims for c in callers), "own_cores": (own1 - own0) / (wall1 - wall0),
                "pss": peak, "load": load,
                "texts": [" / ".join(text for _, text in s.transcripts) for s in sentences[:utterances]]}


def report(r: dict[str, Any]) -> None:
    ms = [v * 1000 for v in r["latencies"]]
    lat = (f"p50 {statistics.median(ms):6.0f} ms  p90 {pct(ms, 0.9):6.0f} ms  max {max(ms):6.0f} ms"
           if ms else "no transcript")
    dropped = sum(r["dropped"].values())
    print(f"N={r['n']:3d}  {lat}  missing {r['missing']:2d}/{r['sentences']}  dropped {dropped}"
          f"  interims {r['interims'] / r['sentences']:.1f}/sentence"
          f"{' ' + str(r['dropped']) if dropped else ''}  CPU sandbox {r['cores']:.2f} cores, callers"
          f" {r['own_cores']:.2f}  PSS peak {r['pss']:.0f} MiB  (load before {r['load'][0]:.2f})", flush=True)
    if r["ended"]:
        ended = [v * 1000 for v in r["ended"]]
        print(f"       end of speech -> transcribe_speech_ended (VAD hangover and lag) p50 {statistics.median(ended):6.0f}"
              f" ms  p90 {pct(ended, 0.9):6.0f} ms", flush=True)
    print("       cores by process: " + ", ".join(f"{k} {v:.2f}" for k, v in r["by_process"].items()), flush=True)


async def main_async(args: argparse.Namespace) -> None:
    from websockets.asyncio.client import connect

    print(f"{os.cpu_count()} CPUs, load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
    if args.idle:
        await asyncio.to_thread(bare_model)
    else:
        rate, cpu, mean_s = await asyncio.to_thread(bare_engine)
        print(f"reference, the bare engine (faster-whisper in one process, the sandbox's model options): "
              f"{rate:.1f} utterances/s, {1000 / rate:.0f} ms each ({cpu * 1000:.0f} ms of CPU: when the machine is"
              f" shared, less CPU than wall time is work it did not get to do); one sentence per call every"
              f" {mean_s + GAP_S:.1f} s -> {rate * (mean_s + GAP_S):.0f} calls if transcription were all the work",
              flush=True)
    print(f"reference, PSS of this process with the bare engine loaded (python, faster-whisper, the model): "
          f"{pss_mib([os.getpid()]):.0f} MiB", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        # a shared, loaded machine starts the sandbox slowly
        async with sandbox_with_trunk(Path(tmp), args.settings, start_timeout_s=180) as (sandbox, trunk):
            assert sandbox.proc is not None
            sip_port = sandbox.sip_port
            await asyncio.to_thread(settle, sandbox.proc.pid)
            print_pss("idle after start (warm-up done, no call yet)", sandbox.proc.pid)
            token = await asyncio.to_thread(sandbox.login)
            async with httpx.AsyncClient(base_url=sandbox.base_url, params={"token": token}, timeout=30) as api:
                customer = (await api.get("/v1.0/customer")).json()["id"]
                talk = [{"type": "talk", "option": {"text": "Thank you for calling. Your request has been received.",
                                                    "language": "en-US"}}] if args.idle else []
                r = await api.post("/v1.0/flows", json={"name": "transcribed", "detail": "", "actions": [
                    {"type": "answer"}, *talk,
                    {"type": "transcribe_start", "option": {"language": "en-US", "direction": "in"}},
                    {"type": "sleep", "option": {"duration": 3_600_000}}]})
                r.raise_for_status()
                number = (await api.get("/v1.0/numbers")).json()["result"][0]
                (await api.put(f"/v1.0/numbers/{number['id']}", json={"call_flow_id": r.json()["id"]})
                 ).raise_for_status()
                bench = Bench(api, trunk, sip_port, str(number["number"]), sandbox.proc.pid, args)
                async with connect(f"ws://127.0.0.1:{sandbox.api_port}/v1.0/ws?token={token}", max_queue=None,
                                   compression=None) as ws:
                    await ws.send(json.dumps({"type": "subscribe", "topics": [f"customer_id:{customer}:transcribe"]}))

                    async def receive() -> None:
                        async for raw in ws:
                            bench.on_event(json.loads(raw))

                    receiver = asyncio.create_task(receive())
                    warm = await bench.round(1, 1)  # every worker started and its model loaded: not counted
                    print(f"warm-up call: {warm['texts']}", flush=True)
                    if args.idle:
                        await asyncio.to_thread(settle, sandbox.proc.pid)
                        print_pss("idle right after a call", sandbox.proc.pid)
                        retire_s = float(args.settings.get("VOIPBIN_SPEECH_WORKER_IDLE_RETIRE_S", 60))
                        await asyncio.sleep(retire_s + 5)  # the sandbox's idle timers: nothing to await here
                        print_pss(f"idle {retire_s + 5:.0f} s after it (idle workers retired)", sandbox.proc.pid)
                        args.calls = []
                    if args.nice:
                        renice([*tree(sandbox.proc.pid), os.getpid()], args.nice)
                    print(f"target: {TARGET}", flush=True)
                    for n in args.calls:
                        report(await bench.round(n, args.utterances))
                    receiver.cancel()
                if args.calls:
                    await asyncio.to_thread(settle, sandbox.proc.pid)
                    print_pss("idle after the rounds", sandbox.proc.pid)
                print(f"load average now {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", help="comma-separated N (default 1,2,4,8,16,32; --quick 1,4,16)")
    parser.add_argument("--utterances", type=int, help="sentences per caller (default 3; --quick 2)")
    parser.add_argument("--wait", type=float, default=20.0,
                        help="seconds after the last end of speech before a sentence counts missing")
    parser.add_argument("--quick", action="store_true", help="N = 1, 4, 16 with 2 sentences each")
    parser.add_argument("--idle", action="store_true",
                        help="memory only: PSS per process after start, after one call, and once idle workers retire")
    parser.add_argument("--nice", type=int, default=0,
                        help="added to the niceness of the sandbox's processes and the callers once warm (e.g. -5 on a"
                             " shared machine, as root: other work then disturbs the figures less)")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="VOIPBIN_NAME=VALUE",
                        help="a setting of the sandbox (e.g. VOIPBIN_WHISPER_WORKERS=2); repeatable")
    args = parser.parse_args()
    args.settings = dict(item.split("=", 1) for item in args.settings)
    args.calls = [int(n) for n in (args.calls or ("1,4,16" if args.quick else "1,2,4,8,16,32")).split(",")]
    args.utterances = args.utterances or (2 if args.quick else 3)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
