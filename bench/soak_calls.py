"""Soak: N sequential calls with transcription and a speaking against a real ``voipbin sandbox``.

Run: .venv/bin/python bench/soak_calls.py [--calls 200] [--idle-calls 6] [--warmup 100]

A ``voipbin sandbox`` child process (SQLite in a temp dir) and two baresip softphones (Debian
``baresip``; baresip takes at most 4 calls each) that answer automatically and speak a LibriVox
recording (Debian ``pocketsphinx-testdata``) in a loop, or silence when it is missing. Each call:
``POST /calls`` (flow ``transcribe_start`` + ``sleep``), once ``progressing`` ``POST /speakings`` and
``/say`` a sentence, 1.5 s of conversation, ``POST /calls/{id}/hangup``. Printed:

* RSS of every process of the sandbox (the server and each speech worker) and the server's open
  file descriptors after ``--warmup`` calls (every worker started and loaded) and after the N calls, and
  the growth of each process that ran throughout (issue 14: RSS after - before <= 5 %, no fd leaked);
* the sandbox's RSS when idle and its memory per idle (answered, silent) call, from ``--idle-calls``
  calls held up at once;
* drain time (SIGTERM with the idle calls up -> exit) and recovery time (SIGKILL with calls up,
  restart -> the API answers with every call already ``hangup``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from support import children
from voipbin.demo.baresip import BaresipPhone

VOIPBIN = str(Path(sys.executable).with_name("voipbin"))
ADMIN = {"username": "admin@localhost", "password": "admin@localhost"}
LIBRIVOX = sorted(Path("/usr/share/pocketsphinx/test/data/librivox").glob("*.wav"))
SENTENCE = "Thank you for calling. Your request has been received."


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def name_of(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "?"
    if "sandbox" in cmd:
        return "server"
    try:  # speech workers name themselves vb-<pool> (voipbin.speech.worker_process)
        with open(f"/proc/{pid}/comm") as f:
            comm = f.read().strip()
    except OSError:
        return "?"
    return f"speech worker {comm}" if comm.startswith("vb-") else cmd[:40]


def snapshot(pid: int) -> dict[str, Any]:
    procs = {p: (name_of(p), rss_kib(p)) for p in [pid, *children(pid)] if os.path.exists(f"/proc/{p}")}
    return {"procs": procs, "fds": len(os.listdir(f"/proc/{pid}/fd")), "total_kib": sum(r for _, r in procs.values())}


def show(label: str, snap: dict[str, Any]) -> None:
    parts = ", ".join(f"{name} {pid}: {rss / 1024:.0f} MiB" for pid, (name, rss) in snap["procs"].items())
    print(f"  {label:<14} total {snap['total_kib'] / 1024:7.1f} MiB  server fds {snap['fds']:4d}  ({parts})")


def print_per_process(before: dict[str, Any], after: dict[str, Any]) -> None:
    """RSS growth of each process present in both snapshots (issue 14: each <= +5 %); workers that were
    recycled (gone) or started meanwhile are listed apart."""
    kept = sorted(set(before["procs"]) & set(after["procs"]))
    worst = 0.0
    for pid in kept:
        (name, b), (_, a) = before["procs"][pid], after["procs"][pid]
        pct = (a - b) / b * 100
        worst = max(worst, pct)
        print(f"    {name} {pid}: {b / 1024:.0f} -> {a / 1024:.0f} MiB ({pct:+.1f} %)")
    gone = sorted(set(before["procs"]) - set(after["procs"]))
    new = sorted(set(after["procs"]) - set(before["procs"]))
    if gone or new:
        sizes = ", ".join(f"{after['procs'][p][1] / 1024:.0f} MiB" for p in new)
        print(f"    recycled: {gone} -> {new} ({sizes})")
    print(f"  largest growth of a process that ran throughout: {worst:+.1f} %")


class Sandbox:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.sip_port = free_port(socket.SOCK_DGRAM)
        self.proc: subprocess.Popen[bytes] | None = None
        self.base = ""

    async def start(self) -> float:
        """Start; returns seconds until the API answered."""
        port = free_port()
        env = {**os.environ, "VOIPBIN_DATABASE_URL": f"sqlite+aiosqlite:///{self.workdir / 'voipbin.db'}",
               "VOIPBIN_SIP_PORT": str(self.sip_port), "VOIPBIN_RTP_PORT_MIN": "42000",
               "VOIPBIN_RTP_PORT_MAX": "42999", "VOIPBIN_HTTPS_PORT": "0", "VOIPBIN_LOG_LEVEL": "INFO"}
        started = time.monotonic()
        with (self.workdir / "sandbox.log").open("ab") as log:
            self.proc = subprocess.Popen([VOIPBIN, "sandbox", "--host", "127.0.0.1", "--port", str(port)],
                                         env=env, stdout=log, stderr=log)
        self.base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=self.base) as c:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"sandbox exited {self.proc.returncode}")
                try:
                    if (await c.get("/openapi.json")).status_code == 200:
                        return time.monotonic() - started
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)

    def stop(self, sig: int) -> tuple[int, float]:
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(sig)
        code = self.proc.wait(60)
        return code, time.monotonic() - started


async def wait_status(c: httpx.AsyncClient, q: dict[str, str], call_id: str, statuses: set[str],
                      timeout: float = 30) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            call = (await c.get(f"/v1.0/calls/{call_id}", params=q)).json()
            if call["status"] in statuses:
                return call  # type: ignore[no-any-return]
            await asyncio.sleep(0.05)


async def dial(c: httpx.AsyncClient, q: dict[str, str], number: str, to: str, actions: list[dict[str, Any]]
               ) -> str:
    r = await c.post("/v1.0/calls", params=q, json={
        "source": {"type": "tel", "target": number}, "destinations": [{"type": "extension", "target_name": to}],
        "actions": actions})
    r.raise_for_status()
    return str(r.json()["calls"][0]["id"])


async def one_call(c: httpx.AsyncClient, q: dict[str, str], number: str, to: str) -> None:
    call_id = await dial(c, q, number, to, [
        {"type": "transcribe_start", "option": {"language": "en-US", "direction": "in"}},
        {"type": "sleep", "option": {"duration": 30000}}])
    await wait_status(c, q, call_id, {"progressing"})
    r = await c.post("/v1.0/speakings", params=q, json={"reference_type": "call", "reference_id": call_id,
                                                         "language": "en-US", "direction": "out"})
    r.raise_for_status()
    speaking = r.json()["id"]
    async with asyncio.timeout(15):
        while (await c.get(f"/v1.0/speakings/{speaking}", params=q)).json()["status"] != "active":
            await asyncio.sleep(0.05)
    (await c.post(f"/v1.0/speakings/{speaking}/say", params=q, json={"text": SENTENCE})).raise_for_status()
    await asyncio.sleep(1.5)
    (await c.post(f"/v1.0/calls/{call_id}/hangup", params=q)).raise_for_status()
    await wait_status(c, q, call_id, {"hangup"})


async def main(args: argparse.Namespace) -> None:
    if shutil.which("baresip") is None:
        raise SystemExit("baresip is not installed (Debian package baresip)")
    work = Path(tempfile.mkdtemp(prefix="voipbin-soak-"))
    audio = work / "phone.wav"
    if LIBRIVOX:  # 8 kHz mono, padded with silence, long enough for every call
        subprocess.run(["sox", str(LIBRIVOX[0]), "-r", "8000", "-c", "1", "-b", "16", str(audio), "pad", "0", "2",
                        "repeat", "200"], check=True)
    else:
        subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(audio), "trim", "0", "3600"], check=True)
    sandbox = Sandbox(work)
    up_s = await sandbox.start()
    assert sandbox.proc is not None
    phones: list[BaresipPhone] = []
    try:
        async with httpx.AsyncClient(base_url=sandbox.base, timeout=30) as c:
            q = {"token": (await c.post("/auth/login", json=ADMIN)).json()["token"]}
            number = (await c.get("/v1.0/numbers", params=q)).json()["result"][0]["number"]
            for name in ("soak1", "soak2"):
                ext = (await c.post("/v1.0/extensions", params=q, json={
                    "name": name, "detail": "soak", "extension": name, "password": "soak-pass-1"})).json()
                (work / name).mkdir()
                phone = BaresipPhone(work / name, user=name, domain=f"{ext['customer_id']}.registrar.voipbin.test",
                                     password="soak-pass-1", proxy=("127.0.0.1", sandbox.sip_port), audio_file=audio)
                await phone.start()
                await phone.wait_event("REGISTER_OK")
                phones.append(phone)
            await asyncio.sleep(3)  # the speech models finish loading in their workers
            idle = snapshot(sandbox.proc.pid)
            print(f"sandbox up in {up_s:.2f} s; idle:")
            show("idle", idle)

            # memory per idle call: answered calls that only sleep (no speech sessions)
            ids = [await dial(c, q, number, ("soak1", "soak2")[i % 2], [{"type": "sleep", "option": {"duration": 600000}}])
                   for i in range(args.idle_calls)]
            for call_id in ids:
                await wait_status(c, q, call_id, {"progressing"})
            await asyncio.sleep(2)
            held = snapshot(sandbox.proc.pid)
            per_call = (held["procs"][sandbox.proc.pid][1] - idle["procs"][sandbox.proc.pid][1]) / args.idle_calls
            print(f"{args.idle_calls} idle calls up: server +{per_call:.0f} KiB per idle call")
            show("idle calls", held)
            for call_id in ids:
                await c.post(f"/v1.0/calls/{call_id}/hangup", params=q)
            for call_id in ids:
                await wait_status(c, q, call_id, {"hangup"})

            for i in range(args.warmup):  # every worker started and loaded, the allocators warm
                await one_call(c, q, number, ("soak1", "soak2")[i % 2])
            before = snapshot(sandbox.proc.pid)
            started = time.monotonic()
            for i in range(args.calls):
                await one_call(c, q, number, ("soak1", "soak2")[i % 2])
                if (i + 1) % 20 == 0:
                    print(f"  {i + 1} calls, {time.monotonic() - started:.0f} s")
            await asyncio.sleep(2)
            after = snapshot(sandbox.proc.pid)
            print(f"{args.calls} sequential calls (transcribe + speaking) in {time.monotonic() - started:.0f} s:")
            show("before", before)
            show("after", after)
            growth = (after["total_kib"] - before["total_kib"]) / before["total_kib"] * 100
            print(f"  RSS after - before: {growth:+.1f} % of the process tree; "
                  f"server fds {before['fds']} -> {after['fds']} ({after['fds'] - before['fds']:+d})")
            print_per_process(before, after)

            # drain: SIGTERM with idle calls up
            ids = [await dial(c, q, number, ("soak1", "soak2")[i % 2], [{"type": "sleep", "option": {"duration": 600000}}])
                   for i in range(args.idle_calls)]
            for call_id in ids:
                await wait_status(c, q, call_id, {"progressing"})
        code, drain_s = sandbox.stop(signal.SIGTERM)
        drained = [line for line in (work / "sandbox.log").read_text().splitlines() if "drained" in line]
        print(f"drain: SIGTERM with {args.idle_calls} live calls -> exit {code} in {drain_s:.2f} s "
              f"(calls hung up, sessions stopped, outbox flushed: {drained[-1].split('seconds=')[-1] if drained else '?'} s;"
              " the rest is stopping the speech workers and the interpreter)")

        # recovery: SIGKILL with calls up, restart
        up_s = await sandbox.start()
        async with httpx.AsyncClient(base_url=sandbox.base, timeout=30) as c:
            q = {"token": (await c.post("/auth/login", json=ADMIN)).json()["token"]}
            ids = [await dial(c, q, number, ("soak1", "soak2")[i % 2], [{"type": "sleep", "option": {"duration": 600000}}])
                   for i in range(args.idle_calls)]
            for call_id in ids:
                await wait_status(c, q, call_id, {"progressing"})
        sandbox.stop(signal.SIGKILL)
        up_s = await sandbox.start()
        async with httpx.AsyncClient(base_url=sandbox.base, timeout=30) as c:
            q = {"token": (await c.post("/auth/login", json=ADMIN)).json()["token"]}
            statuses = [(await c.get(f"/v1.0/calls/{i}", params=q)).json()["status"] for i in ids]
        print(f"recovery: SIGKILL with {args.idle_calls} live calls, restart: API up in {up_s:.2f} s with "
              f"{statuses.count('hangup')}/{len(ids)} calls already hangup")
    finally:
        for phone in phones:
            await phone.stop()
        if sandbox.proc is not None and sandbox.proc.poll() is None:
            sandbox.stop(signal.SIGTERM)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--idle-calls", type=int, default=6, help="calls held up at once (at most 8)")
    parser.add_argument("--warmup", type=int, default=100,
                        help="calls before the 'before' snapshot (caches and workers warm)")
    asyncio.run(main(parser.parse_args()))
