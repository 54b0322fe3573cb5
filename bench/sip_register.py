#!/usr/bin/env python3
"""REGISTER with digest through what users run: the ``voipbin sandbox`` process and its store.

Starts a real ``voipbin sandbox`` (SQLite in a temporary data dir; ``--database-url`` for PostgreSQL),
creates ``--users`` extensions over the REST API, and drives its SIP port from this process with an
open-loop asyncio client over UDP: registrations start at a fixed rate; each sends REGISTER, answers the
401 (MD5 digest, qop=auth) and waits for the 200, retransmitting with RFC 3261 Timer E (500 ms doubling to
4 s, given up after 32 s). In the same invocation, when Debian's ``kamailio`` is installed, Kamailio
(bench/reference/kamailio_registrar.py: registrar + usrloc in memory + fixed-password auth) is driven by
the same client, in interleaved rounds (voipbin, kamailio, voipbin, ...) at each rate. Both servers are
pinned to one CPU; this client runs on the others.

Per round: registrations/s achieved, p50/p99 registration latency (first send to the 200), retransmissions,
503s and failures, and the server process tree's CPU per registration (/proc); then what else used the
machine during the run: ``others``, the CPU seconds of every process outside the server's tree and this
client (processes that lived through the run), and ``loop waited``, how long the server's main threads
(voipbin's event loop; Kamailio's workers) were runnable but not running, waiting for their CPU
(/proc/<pid>/schedstat). The servers share their CPU with whatever else runs on the machine: on a quiet
2-core machine others is ~0.1 s and voipbin's loop waits ~70-120 ms per 8 s run (for its own threads); a
round over the bar with seconds of others' CPU and a long wait was disturbed rather than slow (the bar is
not relaxed for it). A rate is *clean* when no registration was retransmitted, failed or refused and
p99 <= 20 ms. Medians per server and rate, the highest clean rate of each, and the ratios last. Target
(issue 21): voipbin clean at >= 2,000/s, p99 <= 20 ms, <= 1 ms CPU per registration.

``--burst 10x``: voipbin only; registrations at ``--burst-base``/s for 18 s and, from 3 s to 8 s, a flood
of REGISTERs without credentials from bench/sip_flood.py (another process) that makes the offered
messages 10x; a per-second table of the measured registrations (offered, ok, 503, failed, p99), the
flood's answers by status, and how long after the burst ended service was normal again (every later
second clean). Target: 503 + Retry-After beyond capacity, normal within 5 s.

    .venv/bin/python bench/sip_register.py [--quick] [--rates 1000,2000,3000] [--rounds 2]
    .venv/bin/python bench/sip_register.py --burst 10x
    .venv/bin/python bench/sip_register.py --database-url postgresql+asyncpg://postgres@127.0.0.1/voipbin_bench

The client's sockets are spread over 127.0.0.2 upwards (the stack's token bucket is per source IP); user
``i`` always registers from source ``i % sources``, so after the warm-up every registration is a refresh of
an existing binding (the steady state of a registrar), except in the first round's first seconds. The
client's garbage collector is off during each run (collected between runs): its own pauses, up to
hundreds of ms with thousands of registrations in flight, would be counted as the servers' latency.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import os
import re
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent / "tests"))
sys.path.insert(0, str(BENCH_DIR))
from reference import kamailio_registrar  # noqa: E402
from tests_support.processes import SandboxProcess  # noqa: E402

PASSWORD = "bench-password"
CLEAN_P99_MS = 20.0
WARM_UP_RATE = 200.0  # registrations/s while every user is bound for the first time
T1, T2, TIMER_F = 0.5, 4.0, 32.0
CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")

REALM_RE = re.compile(rb'WWW-Authenticate: Digest [^\r]*realm="([^"]+)"')
NONCE_RE = re.compile(rb'WWW-Authenticate: Digest [^\r]*nonce="([^"]+)"')
STATUS_RE = re.compile(rb"^SIP/2\.0 (\d{3})")
CALLID_RE = re.compile(rb"\r\nCall-ID: ([^\r]+)\r\n", re.IGNORECASE)
CSEQ_RE = re.compile(rb"\r\nCSeq: (\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class Target:
    """A registrar under load: its name, the process whose tree's CPU is counted, where to send, the domain."""

    name: str
    pid: int
    addr: tuple[str, int]
    domain: str


@dataclass
class Tally:
    """What one load run saw; ``seconds`` buckets registrations by the second they started in."""

    ok: int = 0
    refused: int = 0  # 503 (either leg)
    failed: int = 0  # timed out or any other status
    retransmissions: int = 0
    latencies: list[float] = field(default_factory=list)
    seconds: dict[int, list] = field(default_factory=dict)  # second -> [offered, ok, 503, failed, latencies]

    def bucket(self, second: int) -> list:
        return self.seconds.setdefault(second, [0, 0, 0, 0, []])


@dataclass(frozen=True)
class Sample:
    """One round: registrations/s completed, latency ms, retransmissions, refusals, failures, CPU us/reg."""

    rate: float
    p50_ms: float
    p99_ms: float
    retrans: int
    refused: int
    failed: int
    cpu_us: float
    others_cpu_s: float = 0.0  # CPU of the processes outside the server's tree and this client, during the run
    waited_ms: float = 0.0  # run-queue wait of the server tree's main threads during the run

    @property
    def clean(self) -> bool:
        return self.retrans == 0 and self.refused == 0 and self.failed == 0 and self.p99_ms <= CLEAN_P99_MS


# -- load client ------------------------------------------------------------------------------------
def register_bytes(user: str, domain: str, src: tuple[str, int], call_id: str, cseq: int, auth: str | None) -> bytes:
    lines = [
        f"REGISTER sip:{domain} SIP/2.0",
        f"Via: SIP/2.0/UDP {src[0]}:{src[1]};branch=z9hG4bK{call_id}-{cseq};rport",
        "Max-Forwards: 70",
        f"From: <sip:{user}@{domain}>;tag={call_id[-8:]}",
        f"To: <sip:{user}@{domain}>",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} REGISTER",
        f"Contact: <sip:{user}@{src[0]}:{src[1]}>",
        "Expires: 3600",
        "User-Agent: sipp-bench",  # MD5-only challenge (see Registrar.md5_only_user_agents)
    ]
    if auth:
        lines.append(auth)
    lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


class Client(asyncio.DatagramProtocol):
    """One UDP socket; responses resolve the waiter of their (Call-ID, CSeq)."""

    def __init__(self) -> None:
        self.waiters: dict[tuple[bytes, bytes], asyncio.Future[bytes]] = {}
        self.transport: asyncio.DatagramTransport | None = None
        self.addr: tuple[str, int] = ("", 0)

    def connection_made(self, transport) -> None:  # type: ignore[no-untyped-def]
        self.transport = transport
        self.addr = transport.get_extra_info("sockname")

    def datagram_received(self, data: bytes, addr) -> None:  # type: ignore[no-untyped-def]
        call_id, cseq = CALLID_RE.search(data), CSEQ_RE.search(data)
        if call_id and cseq:
            fut = self.waiters.pop((call_id.group(1), cseq.group(1)), None)
            if fut is not None and not fut.done():
                fut.set_result(data)


async def transaction(client: Client, data: bytes, key: tuple[bytes, bytes], dest: tuple[str, int],
                      tally: Tally) -> bytes | None:
    """Send with Timer E retransmissions; the response, or None after Timer F (32 s)."""
    fut = asyncio.get_running_loop().create_future()
    client.waiters[key] = fut
    interval, waited = T1, 0.0
    assert client.transport is not None
    while True:
        client.transport.sendto(data, dest)
        done, _ = await asyncio.wait((fut,), timeout=interval)
        if done:
            return fut.result()
        waited += interval
        if waited >= TIMER_F:
            client.waiters.pop(key, None)
            return None
        tally.retransmissions += 1
        interval = min(interval * 2, T2)


async def register(client: Client, target: Target, user: str, call_id: str, tally: Tally, second: int) -> None:
    bucket = tally.bucket(second)
    bucket[0] += 1
    t0 = time.perf_counter()
    cid = call_id.encode()
    first = await transaction(client, register_bytes(user, target.domain, client.addr, call_id, 1, None),
                              (cid, b"1"), target.addr, tally)
    status = STATUS_RE.match(first) if first else None
    realm, nonce = (REALM_RE.search(first), NONCE_RE.search(first)) if first else (None, None)
    second_leg = None
    if status and status.group(1) == b"401" and realm and nonce:
        r, n, uri = realm.group(1).decode(), nonce.group(1).decode(), f"sip:{target.domain}"
        cnonce = call_id[-12:]
        digest = md5(f"{md5(f'{user}:{r}:{PASSWORD}')}:{n}:00000001:{cnonce}:auth:{md5('REGISTER:' + uri)}")
        auth = (f'Authorization: Digest username="{user}", realm="{r}", nonce="{n}", uri="{uri}", '
                f'response="{digest}", algorithm=MD5, qop=auth, nc=00000001, cnonce="{cnonce}"')
        second_leg = await transaction(client, register_bytes(user, target.domain, client.addr, call_id, 2, auth),
                                       (cid, b"2"), target.addr, tally)
        status = STATUS_RE.match(second_leg) if second_leg else None
    code = status.group(1) if status else b""
    if code == b"200" and second_leg is not None:
        latency = time.perf_counter() - t0
        tally.ok += 1
        tally.latencies.append(latency)
        bucket[1] += 1
        bucket[4].append(latency)
    elif code == b"503":
        tally.refused += 1
        bucket[2] += 1
    else:
        tally.failed += 1
        bucket[3] += 1


class Load:
    """The client sockets (``sources`` addresses 127.0.0.2...) and the registration schedule."""

    def __init__(self, clients: list[Client], users: int) -> None:
        self.clients, self.users, self.serial = clients, users, 0

    @classmethod
    async def open(cls, sources: int, users: int) -> Load:
        loop = asyncio.get_running_loop()
        clients = []
        for i in range(sources):
            _, proto = await loop.create_datagram_endpoint(Client, local_addr=(f"127.0.0.{2 + i}", 0))
            clients.append(proto)
        return cls(clients, users)

    async def run(self, target: Target, phases: list[tuple[float, float]], drain_s: float = 35.0) -> Tally:
        """Offer registrations at ``phases`` [(seconds, rate/s), ...] back to back; wait for the last ones."""
        loop = asyncio.get_running_loop()
        tally, tasks = Tally(), set()
        # this client's own garbage collections (its tasks and futures) would be counted as the server's
        # latency: none during a run, one after it (measure)
        gc.disable()
        try:
            return await self._run(loop, tally, tasks, target, phases, drain_s)
        finally:
            gc.enable()

    async def _run(self, loop: asyncio.AbstractEventLoop, tally: Tally, tasks: set, target: Target,
                   phases: list[tuple[float, float]], drain_s: float) -> Tally:
        t0, started, elapsed_before, offered_before = loop.time(), 0, 0.0, 0.0
        for seconds, rate in phases:
            while (now := loop.time() - t0) < elapsed_before + seconds:
                due = int(offered_before + (now - elapsed_before) * rate)
                for _ in range(due - started):
                    self.serial += 1
                    user = self.serial % self.users
                    client = self.clients[user % len(self.clients)]
                    task = loop.create_task(register(client, target, str(1000 + user),
                                                     f"r{self.serial}x{os.getpid()}", tally, int(now)))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                started = max(started, due)
                await asyncio.sleep(0.001)
            elapsed_before += seconds
            offered_before += seconds * rate
        if tasks:
            await asyncio.wait(tasks, timeout=drain_s)
        return tally


def tree_cpu_s(root: int) -> float:
    """utime+stime of ``root`` and its descendants (seconds), from /proc."""
    return cpu_split(root)[0]


def cpu_split(root: int) -> tuple[float, dict[int, float], list[int]]:
    """utime+stime of ``root`` and its descendants (seconds), that of every other process but this one by
    pid, and the pids of the tree, from /proc."""
    parents, times = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_S
    tree, others, pids = 0.0, {}, []
    for pid, cpu in times.items():
        p = pid
        while p not in (0, 1) and p != root:
            p = parents.get(p, 0)
        if p == root:
            tree += cpu
            pids.append(pid)
        elif pid != os.getpid():
            others[pid] = cpu
    return tree, others, pids


def run_queue_wait_s(pids: list[int]) -> dict[int, float]:
    """Seconds each process's main thread has waited on a run queue so far (runnable, another task on its
    CPU), from /proc/<pid>/schedstat (0 where the kernel keeps no schedstats)."""
    waited = {}
    for pid in pids:
        try:
            waited[pid] = int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
        except (OSError, IndexError, ValueError):
            continue
    return waited


async def measure(load: Load, target: Target, rate: float, seconds: float) -> Sample:
    cpu0, others0, pids = cpu_split(target.pid)
    waited0, t0 = run_queue_wait_s(pids), time.monotonic()
    tally = await load.run(target, [(seconds, rate)])
    elapsed = time.monotonic() - t0  # until the last answer
    cpu1, others1, _ = cpu_split(target.pid)
    waited1 = run_queue_wait_s(pids)
    gc.collect()  # the client's garbage of the run, between runs
    lat = sorted(tally.latencies)
    return Sample(rate=tally.ok / elapsed,
                  p50_ms=pct(lat, 0.50), p99_ms=pct(lat, 0.99), retrans=tally.retransmissions,
                  refused=tally.refused, failed=tally.failed, cpu_us=(cpu1 - cpu0) / max(tally.ok, 1) * 1e6,
                  others_cpu_s=sum(cpu - others0[pid] for pid, cpu in others1.items() if pid in others0),
                  waited_ms=sum(w - waited0[pid] for pid, w in waited1.items() if pid in waited0) * 1e3)


def pct(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))] * 1e3


# -- servers ----------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_sip(addr: tuple[str, int], timeout: float = 20.0) -> None:
    """Poll with OPTIONS until the server answers anything (a child process; no event to await)."""
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_datagram_endpoint(Client, local_addr=("127.0.0.1", 0))
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            call_id = f"ping{time.monotonic_ns()}"
            fut = loop.create_future()
            proto.waiters[(call_id.encode(), b"1")] = fut
            msg = (f"OPTIONS sip:ping@{addr[0]} SIP/2.0\r\nVia: SIP/2.0/UDP {proto.addr[0]}:{proto.addr[1]};"
                   f"branch=z9hG4bK{call_id}\r\nMax-Forwards: 70\r\nFrom: <sip:ping@bench>;tag=1\r\n"
                   f"To: <sip:ping@bench>\r\nCall-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
            assert proto.transport is not None
            proto.transport.sendto(msg.encode(), addr)
            done, _ = await asyncio.wait((fut,), timeout=0.5)
            if done:
                return
        raise TimeoutError(f"no SIP answer from {addr}")
    finally:
        assert proto.transport is not None
        proto.transport.close()


async def create_extensions(sandbox: SandboxProcess, users: int) -> str:
    """``users`` extensions 1000.. with PASSWORD over the REST API; the registrar domain."""
    token = sandbox.login()
    async with httpx.AsyncClient(base_url=sandbox.base_url, params={"token": token}, timeout=60) as api:
        sem = asyncio.Semaphore(8)
        customer_ids: set[str] = set()

        async def one(i: int) -> None:
            async with sem:
                r = await api.post("/v1.0/extensions", json={
                    "name": f"bench{i}", "detail": "bench", "extension": str(1000 + i), "password": PASSWORD})
                if r.status_code == 200:
                    customer_ids.add(r.json()["customer_id"])
                elif r.status_code != 409:  # an earlier run's (same password) on a kept PostgreSQL database
                    raise RuntimeError(f"creating extension {1000 + i}: {r.status_code} {r.text}")

        await asyncio.gather(*(one(i) for i in range(users)))
        if not customer_ids:
            page = (await api.get("/v1.0/extensions", params={"page_size": 1})).json()
            customer_ids.add(page["result"][0]["customer_id"])
    return f"{customer_ids.pop()}.registrar.voipbin.test"


async def settle(pid: int, busy: float = 0.05, timeout: float = 90.0) -> None:
    """Wait until ``pid``'s tree uses under ``busy`` of a CPU over a second (the sandbox loads its speech
    models in the background after it starts), at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = tree_cpu_s(pid)
        await asyncio.sleep(1.0)  # sampling CPU use over a second; there is no event for "idle"
        if tree_cpu_s(pid) - before < busy:
            return


def pin_tree(root: int, cpu: int) -> None:
    """Pin every thread of ``root`` (threads started later inherit it) to ``cpu``."""
    for tid in os.listdir(f"/proc/{root}/task"):
        try:
            os.sched_setaffinity(int(tid), {cpu})
        except OSError:
            pass


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- rounds and report ------------------------------------------------------------------------------
def row(name: str, rate: float, s: Sample) -> str:
    return (f"{name:<9} {rate:>6.0f}/s offered  {s.rate:>7,.0f} reg/s  p50 {s.p50_ms:6.2f} ms  p99 {s.p99_ms:7.2f} ms  "
            f"retrans {s.retrans:>5}  503 {s.refused:>5}  failed {s.failed:>4}  CPU {s.cpu_us:6.0f} us/reg"
            f"  {'clean' if s.clean else 'NOT clean'}  (others {s.others_cpu_s:4.1f} s CPU, loop waited {s.waited_ms:5.0f} ms)")


def median_sample(samples: list[Sample]) -> Sample:
    def med(attr: str) -> float:
        return statistics.median(getattr(s, attr) for s in samples)
    return Sample(rate=med("rate"), p50_ms=med("p50_ms"), p99_ms=med("p99_ms"), retrans=int(med("retrans")),
                  refused=int(med("refused")), failed=int(med("failed")), cpu_us=med("cpu_us"),
                  others_cpu_s=med("others_cpu_s"), waited_ms=med("waited_ms"))


async def compare(args: argparse.Namespace, targets: list[Target], load: Load) -> None:
    results: dict[tuple[str, float], list[Sample]] = {}
    for n in range(args.rounds):
        print(f"-- round {n + 1}/{args.rounds} ({args.seconds:.0f} s per run)", flush=True)
        for rate in args.rates:
            for target in targets:  # interleaved: same rate, each server in turn
                sample = await measure(load, target, rate, args.seconds)
                results.setdefault((target.name, rate), []).append(sample)
                print(row(target.name, rate, sample), flush=True)
    print(f"\nmedians over {args.rounds} round(s); clean = no retransmission, 503 or failure and p99 <= "
          f"{CLEAN_P99_MS:.0f} ms in every round")
    best: dict[str, float] = {}
    for target in targets:
        for rate in args.rates:
            samples = results[(target.name, rate)]
            print(row(target.name, rate, median_sample(samples)))
            if all(s.clean for s in samples):
                best[target.name] = max(best.get(target.name, 0.0), rate)
    for target in targets:
        print(f"{target.name:<9} highest clean rate tried: {best.get(target.name, 0):,.0f}/s")
    if len(targets) == 2:
        mine, ref = targets[0].name, targets[1].name
        print(f"\nratios {mine}/{ref} (CPU per registration, p99; throughput of the highest clean rate):")
        for rate in args.rates:
            a, b = median_sample(results[(mine, rate)]), median_sample(results[(ref, rate)])
            print(f"  at {rate:>6.0f}/s: CPU {a.cpu_us / max(b.cpu_us, 1e-9):5.2f}x   p99 "
                  f"{a.p99_ms / max(b.p99_ms, 1e-9):5.2f}x")
        print(f"  highest clean rate: {best.get(mine, 0) / max(best.get(ref, 0), 1e-9):.2f}x")


async def burst(args: argparse.Namespace, target: Target, load: Load) -> None:
    """Full registrations at ``--burst-base``/s for 18 s (measured, per second); from 3 s to 8 s
    bench/sip_flood.py adds (factor - 1) x base x 2 REGISTERs/s without credentials (the message rate of
    that many registrations, each first leg answered 401 or 503), so the offered load is factor x base."""
    factor = float(args.burst.rstrip("x"))
    base, burst_start, burst_end = args.burst_base, 3, 8
    flood_rate = (factor - 1) * base * 2
    print(f"burst: {base:.0f} registrations/s for 18 s; from {burst_start} s to {burst_end} s also {flood_rate:,.0f} "
          f"REGISTERs/s without credentials ({factor:.0f}x the messages)", flush=True)

    async def flood() -> str:
        await asyncio.sleep(burst_start)  # the burst starts 3 s into the run
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(BENCH_DIR / "sip_flood.py"), "--host", target.addr[0], "--port", str(target.addr[1]),
            "--domain", target.domain, "--rate", str(flood_rate), "--seconds", str(burst_end - burst_start),
            "--users", str(args.users), stdout=asyncio.subprocess.PIPE)
        out, _ = await proc.communicate()
        return out.decode().strip()

    cpu0 = tree_cpu_s(target.pid)
    flooded, tally = await asyncio.gather(flood(), load.run(target, [(18.0, base)]))
    cpu = tree_cpu_s(target.pid) - cpu0
    print(f"flood: {flooded}")
    print(" second  offered      ok     503  failed   p99 ms   (full registrations)")
    # normal: nothing refused or failed, p99 within the clean bar or no worse than before the burst
    before = max(pct(sorted(tally.seconds[s][4]), 0.99) for s in range(burst_start) if s in tally.seconds)
    bar = max(CLEAN_P99_MS, before)
    normal_from = None
    for second in sorted(tally.seconds):
        offered, ok, refused, failed, lat = tally.seconds[second]
        p99 = pct(sorted(lat), 0.99)
        print(f"{second:>7} {offered:>8} {ok:>7} {refused:>7} {failed:>7} {p99:>8.1f}")
        normal = refused == 0 and failed == 0 and p99 <= bar
        if second >= burst_end and normal and normal_from is None:
            normal_from = second
        elif not normal:
            normal_from = None
    print(f"total: {tally.ok} ok, {tally.refused} refused with 503, {tally.failed} failed, "
          f"{tally.retransmissions} retransmissions, server CPU {cpu:.1f} s")
    if normal_from is None:
        print("service NOT normal again before the run ended")
    else:
        print(f"service normal (every later second: no 503 or failure, p99 <= {bar:.0f} ms = max({CLEAN_P99_MS:.0f} ms, "
              f"worst second before the burst)) from {normal_from - burst_end} s after the burst ended (target <= 5 s)")


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="sip-register-bench-") as tmp:
        env = {"VOIPBIN_DATABASE_URL": args.database_url} if args.database_url else {}
        sandbox = SandboxProcess(Path(tmp), api_port=free_tcp_port(), sip_port=free_port(), env=env).start(60)
        kamailio = None
        try:
            assert sandbox.proc is not None
            pin_tree(sandbox.proc.pid, args.server_cpu)
            domain = await create_extensions(sandbox, args.users)
            targets = [Target("voipbin", sandbox.proc.pid, ("127.0.0.1", sandbox.sip_port), domain)]
            if not args.burst and kamailio_registrar.available():
                port = free_port()
                kamailio = kamailio_registrar.start(port, PASSWORD, Path(tmp), cpu=args.server_cpu)
                await wait_sip(("127.0.0.1", port))
                targets.append(Target("kamailio", kamailio.pid, ("127.0.0.1", port), domain))
            elif not args.burst:
                print("kamailio not installed (apt-get install kamailio): no reference run")
            await wait_sip(targets[0].addr)
            await settle(sandbox.proc.pid)
            load = await Load.open(args.sources, args.users)
            gc.freeze()  # the client's start-up objects: not walked by its collections between runs
            print(f"REGISTER with MD5 digest over UDP, {args.users} users from {args.sources} sources, servers "
                  f"pinned to CPU {args.server_cpu}; voipbin sandbox on "
                  f"{args.database_url.split(':')[0] if args.database_url else 'SQLite'}", flush=True)
            for target in targets:  # every user bound once (new bindings are the slow path): rounds measure refreshes
                for _ in range(5):
                    warm = await load.run(target, [(args.users / WARM_UP_RATE, WARM_UP_RATE)])
                    await settle(target.pid)  # new bindings publish events (outbox, webhooks): let them drain
                    if warm.refused == 0 and warm.failed == 0:
                        break
            if args.burst:
                await burst(args, targets[0], load)
            else:
                await compare(args, targets, load)
        finally:
            if kamailio is not None:
                kamailio.terminate()
                kamailio.wait(10)
            sandbox.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="500 users, 1000 and 2000/s, 4 s, one round (< 90 s)")
    parser.add_argument("--rates", default="1000,2000,3000", help="offered registrations/s, comma separated")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per run (default 8)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--users", type=int, default=1000, help="distinct extensions")
    parser.add_argument("--sources", type=int, default=8, help="client source IPs 127.0.0.2..")
    parser.add_argument("--server-cpu", type=int, default=0, help="CPU the servers are pinned to")
    parser.add_argument("--database-url", default="", help="the sandbox's database (default: SQLite in a temp dir)")
    parser.add_argument("--burst", default="", help="e.g. 10x: a burst of 10x --burst-base, voipbin only")
    parser.add_argument("--burst-base", type=float, default=1000.0, help="the rate around the burst (default 1000)")
    args = parser.parse_args()
    if args.quick:
        args.users, args.rates, args.seconds, args.rounds = 500, "1000,2000", 4.0, 1
    args.rates = [float(r) for r in args.rates.split(",")]
    cpus = os.sched_getaffinity(0) - {args.server_cpu}
    if cpus:
        os.sched_setaffinity(0, cpus)
    import uvloop

    uvloop.run(run(args))


if __name__ == "__main__":
    main()
