#!/usr/bin/env python3
"""Speech pods (issue 20): whisper decode throughput with one and with two speech pods.

Real ``voipbin serve --role speech`` processes on the local PostgreSQL and NATS
(tests/integration/cluster/cluster_support.py); this process sends them utterances as a media pod
with ``VOIPBIN_SPEECH_REMOTE=nats`` would (`voipbin.speech.remote.SpeechClient`), ``--concurrency``
decodes in flight, cycling over the LibriVox recordings (3-7 s of human speech, 16 kHz). Each
speech pod runs one whisper worker with ``--threads`` CTranslate2 threads (no interim workers).

Printed per phase: utterances decoded per second (wall clock), and CPU seconds per utterance of the
speech pods' process trees (pod + its worker processes, from /proc). Phases, in this order:
reference (one local whisper worker in this process's pool, no bus: what a media pod does without
speech pods), 1 speech pod, 2 speech pods, 1 speech pod again (the second one stopped), reference
again. The last line is the ratio of 2 pods' throughput to 1 pod's (the mean of both 1-pod phases).
Linear growth is 2.0 when the machine has the cores: two pods of one thread each need two free
cores; on a shared 2-core machine the ratio is bounded by what the other processes leave.

    .venv/bin/python bench/speech_pods.py [--utterances 30] [--concurrency 4] [--threads 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import wave
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(BENCH_DIR.parent / "tests"))
sys.path.insert(0, str(BENCH_DIR.parent / "tests" / "integration" / "cluster"))
from cluster_support import Cluster, Pod  # noqa: E402
from pod_commands import NATS_URL, _database, _drop  # noqa: E402

from voipbin.events.nats_bus import NatsBus  # noqa: E402
from voipbin.speech.remote import SpeechClient  # noqa: E402
from voipbin.speech.settings import SpeechSettings  # noqa: E402
from voipbin.speech.stt.whisper import WhisperRecognizer  # noqa: E402

LIBRIVOX = sorted(Path("/usr/share/pocketsphinx/test/data/librivox").glob("*.wav"))
CLK_TCK = os.sysconf("SC_CLK_TCK")


def utterances() -> list[bytes]:
    """The LibriVox recordings as 16 kHz PCM16 mono."""
    out = []
    for path in LIBRIVOX:
        with wave.open(str(path)) as w:
            assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2, path
            out.append(w.readframes(w.getnframes()))
    return out


def tree_cpu_s(root_pids: list[int]) -> float:
    """User + system CPU seconds of the processes ``root_pids`` and all their live descendants."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        cpu[pid] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    wanted = set(root_pids)
    grew = True
    while grew:
        more = {pid for pid, ppid in parents.items() if ppid in wanted} - wanted
        wanted |= more
        grew = bool(more)
    return sum(cpu.get(pid, 0.0) for pid in wanted)


def pod_pids(*pods: Pod) -> list[int]:
    return [p.proc.pid for p in pods if p.proc is not None]


async def run_phase(name: str, transcribe, pcms: list[bytes], n: int, concurrency: int,  # type: ignore[no-untyped-def]
                    pids: list[int]) -> tuple[float, float]:
    """Decode ``n`` utterances, ``concurrency`` at a time; prints and returns (utterances per second,
    CPU seconds per utterance). ``pids``: the processes (with descendants) whose CPU the decodes cost."""
    gate = asyncio.Semaphore(concurrency)
    audio_s = 0.0

    async def one(i: int) -> str:
        nonlocal audio_s
        async with gate:
            pcm = pcms[i % len(pcms)]
            audio_s += len(pcm) / 32000
            return await transcribe(pcm)

    cpu0, t0 = tree_cpu_s(pids), time.perf_counter()
    texts = await asyncio.gather(*(one(i) for i in range(n)))
    wall, cpu = time.perf_counter() - t0, tree_cpu_s(pids) - cpu0
    assert all(t.strip() for t in texts), "an utterance decoded to nothing"
    rate = n / wall
    cpu_per = cpu / n
    print(f"{name:<34} {rate:6.2f} utt/s   {wall:6.1f} s for {n} ({audio_s:.0f} s of speech)   "
          f"CPU {cpu_per * 1000:6.0f} ms/utt")
    return rate, cpu_per


async def wait_warm(pod: Pod, timeout: float = 300) -> None:
    """Until the speech pod logged that its engines are loaded."""
    deadline = time.monotonic() + timeout
    while "speech engines warm" not in (pod.log_path.read_text(errors="replace") if pod.log_path.exists() else ""):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{pod.pod_id} not warm within {timeout}s:\n{pod.log_tail()}")
        await asyncio.sleep(0.5)  # another process's log: no event to await


async def main(args: argparse.Namespace) -> None:
    pcms = utterances()
    env = {"VOIPBIN_WHISPER_WORKERS": "1", "VOIPBIN_WHISPER_INTERIM_WORKERS": "0",
           "VOIPBIN_WHISPER_CPU_THREADS": str(args.threads), "VOIPBIN_STT_FINAL_MAX_WAIT_MS": "0"}
    local = WhisperRecognizer(SpeechSettings(whisper_workers=1, whisper_interim_workers=0,
                                             whisper_cpu_threads=args.threads, stt_final_max_wait_ms=0))
    await local.warm_up()

    async def local_decode(pcm: bytes) -> str:
        return await local.transcribe(pcm, language="en")

    local_pids = local.worker_pools()[0].pids()  # the final decodes' worker

    print(f"{os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.1f}: the machine may be shared); "
          f"{args.utterances} utterances a phase, {args.concurrency} in flight, whisper tiny.en, "
          f"1 worker x {args.threads} thread(s) per speech pod")
    db_name, db_url = await _database()
    bus = NatsBus(NATS_URL, name="speech-pods-bench")
    await bus.start()
    client = SpeechClient(bus, timeout_s=300)
    model = local.model_token

    async def remote_decode(pcm: bytes) -> str:
        return await client.transcribe(model, pcm, language="en")

    with tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(Path(tmp), db_url=db_url, bus_url=NATS_URL)
        try:
            ref1 = await run_phase("reference: local pool, no bus", local_decode, pcms, args.utterances,
                                   args.concurrency, local_pids)
            s1 = await cluster.start("speech", env=env)
            await wait_warm(s1)
            one_a = await run_phase("1 speech pod", remote_decode, pcms, args.utterances, args.concurrency, pod_pids(s1))
            s2 = await cluster.start("speech", env=env)
            await wait_warm(s2)
            two = await run_phase("2 speech pods", remote_decode, pcms, args.utterances, args.concurrency, pod_pids(s1, s2))
            await asyncio.to_thread(s2.stop)
            one_b = await run_phase("1 speech pod (the other stopped)", remote_decode, pcms, args.utterances,
                                    args.concurrency, pod_pids(s1))
            ref2 = await run_phase("reference again", local_decode, pcms, args.utterances, args.concurrency,
                                   local_pids)
        finally:
            await cluster.stop_all()
            await bus.close()
            await local.aclose()
            await _drop(db_name)
    one = (one_a[0] + one_b[0]) / 2, (one_a[1] + one_b[1]) / 2
    ref = (ref1[0] + ref2[0]) / 2, (ref1[1] + ref2[1]) / 2
    print(f"1 speech pod / local pool: throughput {one[0] / ref[0]:.2f}, CPU per decode {one[1] / ref[1]:.2f} "
          f"(the bus's cost: {(one[1] - ref[1]) * 1000:+.0f} ms CPU a decode)")
    print(f"CPU per decode, 2 speech pods / 1 speech pod: {two[1] / one[1]:.2f} (1.00: a pod added costs "
          f"nothing per decode; each pod decodes up to {1 / one[1]:.1f} utt/s on a core of its own)")
    print(f"2 speech pods / 1 speech pod throughput: {two[0] / one[0]:.2f} (linear: 2.00 with two free cores; "
          f"load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--utterances", type=int, default=30, help="utterances decoded per phase")
    parser.add_argument("--concurrency", type=int, default=4, help="decodes in flight")
    parser.add_argument("--threads", type=int, default=1, help="CTranslate2 threads of each whisper worker")
    asyncio.run(main(parser.parse_args()))
