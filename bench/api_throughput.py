"""API throughput: GET /v1.0/extensions/{id} (served from the in-process cache) through the real
`voipbin sandbox` process, side by side with a bare FastAPI app (bench/reference/bare_fastapi.py) on the
same uvicorn settings (1 worker, uvloop, httptools) returning the same body bytes.

Rounds are interleaved (sandbox, bare, sandbox, bare, ...): the machine is shared, so only figures taken
alternately under the same background load make a meaningful ratio. Each round runs `wrk` (Debian package;
an asyncio httpx client when it is missing) at 8 and at 64 keep-alive connections and reports req/s, p50,
p99 and the server process's CPU per request (utime+stime from /proc/<pid>/stat). Medians, then the ratios
last. Target (issue 21): sandbox/bare throughput >= 0.8, p99 at 64 connections <= 3x the bare app's.

    .venv/bin/python bench/api_throughput.py [--quick] [--seconds 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent / "tests"))
from tests_support.processes import SandboxProcess  # noqa: E402

CONNECTIONS = (8, 64)
TARGET_THROUGHPUT_RATIO = 0.8  # sandbox req/s >= 0.8 x bare, at each connection count
TARGET_P99_RATIO = 3.0  # sandbox p99 <= 3 x bare, at 64 connections
CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Server:
    """A server under load: its name in the output, its process id (for CPU) and the URL to GET."""

    name: str
    pid: int
    url: str


@dataclass(frozen=True)
class Sample:
    """One load run: requests/s, p50 and p99 latency in ms, server CPU per request in microseconds."""

    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us: float


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` in seconds (fields 14 and 15 of /proc/<pid>/stat, after the command name)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_S


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(url: str, seconds: int, connections: int) -> tuple[int, float, float, float]:
    """(requests, req/s, p50 ms, p99 ms) from one ``wrk`` run; exits when any answer was not 2xx."""
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"non-2xx responses during the run:\n{out}")
    return parse_wrk(out)


def parse_wrk(out: str) -> tuple[int, float, float, float]:
    """(requests, req/s, p50 ms, p99 ms) from the output of ``wrk --latency``."""
    requests = int(re.search(r"^\s*(\d+) requests in", out, re.M).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M).group(1))  # type: ignore[union-attr]
    # the "Latency Distribution" rows only ("  50%    1.23ms"): the Stdev column's "75.50%" must not match
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)\s*$", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)\s*$", out, re.M).group(1))  # type: ignore[union-attr]
    return requests, rps, p50, p99


async def run_httpx(url: str, seconds: int, connections: int) -> tuple[int, float, float, float]:
    """The same figures as :func:`run_wrk` from an asyncio httpx client (slower: it shares the CPUs)."""
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=connections)) as client:
        async def worker() -> None:
            while time.monotonic() < deadline:
                t0 = time.perf_counter()
                r = await client.get(url)
                r.raise_for_status()
                latencies.append((time.perf_counter() - t0) * 1000)
        start = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.monotonic() - start
    q = statistics.quantiles(latencies, n=100)
    return len(latencies), len(latencies) / elapsed, q[49], q[98]


def measure(server: Server, seconds: int, connections: int) -> Sample:
    load = run_wrk if shutil.which("wrk") else lambda *a: asyncio.run(run_httpx(*a))
    cpu_before = cpu_seconds(server.pid)
    requests, rps, p50, p99 = load(server.url, seconds, connections)
    cpu_us = (cpu_seconds(server.pid) - cpu_before) / max(requests, 1) * 1e6
    return Sample(rps, p50, p99, cpu_us)


@contextmanager
def bare_app(workdir: Path, body: bytes, timeout: float = 20.0) -> Iterator[tuple[int, str]]:
    """The reference app in a child process returning ``body``: yields (pid, base URL)."""
    body_file = workdir / "body.json"
    body_file.write_bytes(body)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, str(BENCH_DIR / "reference" / "bare_fastapi.py"), "--port", str(port),
                             "--body", str(body_file)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the bare FastAPI app did not start (exit {proc.returncode})")
            try:
                httpx.get(f"{base}/v1.0/extensions/probe", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)  # readiness poll of a child process; there is no event to await
        yield proc.pid, base
    finally:
        proc.terminate()
        proc.wait(10)


def print_row(label: str, connections: int, s: Sample) -> None:
    print(f"{label:<10} {connections:>5} {s.rps:>9.0f} {s.p50_ms:>9.2f} {s.p99_ms:>9.2f} {s.cpu_us:>12.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8, help="length of each load run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (at least 3)")
    parser.add_argument("--quick", action="store_true", help="3 rounds of 3 s runs (under 90 s in all)")
    args = parser.parse_args()
    seconds, rounds = (3, 3) if args.quick else (args.seconds, max(args.rounds, 3))
    with tempfile.TemporaryDirectory() as tmp:
        sandbox = SandboxProcess(Path(tmp), free_port(), env={"VOIPBIN_LOG_LEVEL": "WARNING"}).start()
        try:
            assert sandbox.proc is not None
            token = sandbox.login()
            ext = httpx.post(f"{sandbox.base_url}/v1.0/extensions", params={"token": token}, json={
                "name": "bench", "detail": "bench", "extension": "bench1", "password": "bench-pass-1"}).json()
            path = f"/v1.0/extensions/{ext['id']}?token={token}"
            body = httpx.get(sandbox.base_url + path).raise_for_status().content
            with bare_app(Path(tmp), body) as (bare_pid, bare_base):
                bare_body = httpx.get(bare_base + path).raise_for_status().content
                if bare_body != body:
                    raise SystemExit(f"the reference answers other bytes:\n{bare_body!r}\n{body!r}")
                servers = (Server("sandbox", sandbox.proc.pid, sandbox.base_url + path),
                           Server("bare", bare_pid, bare_base + path))
                for server in servers:  # warm both (caches; the sandbox's speech models load at start)
                    measure(server, 2, CONNECTIONS[-1])
                print(f"GET /v1.0/extensions/{{id}}  body {len(body)} bytes  load={'wrk' if shutil.which('wrk') else 'httpx'}"
                      f"  {rounds} rounds x {seconds} s  (CPUs: {os.cpu_count()})")
                print("Rounds alternate sandbox and bare app: the machine is shared, so only interleaved runs make "
                      "the ratio meaningful.")
                print(f"{'server':<10} {'conns':>5} {'req/s':>9} {'p50 ms':>9} {'p99 ms':>9} {'CPU us/req':>12}")
                samples: dict[tuple[str, int], list[Sample]] = {}
                for r in range(1, rounds + 1):
                    print(f"-- round {r}")
                    for server in servers:
                        for c in CONNECTIONS:
                            s = measure(server, seconds, c)
                            samples.setdefault((server.name, c), []).append(s)
                            print_row(server.name, c, s)
        finally:
            sandbox.stop()
    medians = {key: Sample(*(statistics.median(getattr(s, f) for s in runs)
                             for f in ("rps", "p50_ms", "p99_ms", "cpu_us"))) for key, runs in samples.items()}
    print("-- medians")
    for (name, c), s in medians.items():
        print_row(name, c, s)
    print("-- ratios (sandbox / bare)")
    for c in CONNECTIONS:
        ratio = medians["sandbox", c].rps / medians["bare", c].rps
        print(f"throughput at {c:>2} connections  {ratio:5.2f}x   (target >= {TARGET_THROUGHPUT_RATIO})")
    cpu = medians["sandbox", CONNECTIONS[0]].cpu_us / medians["bare", CONNECTIONS[0]].cpu_us
    print(f"CPU per request at {CONNECTIONS[0]:>2}        {cpu:5.2f}x")
    p99 = medians["sandbox", CONNECTIONS[-1]].p99_ms / medians["bare", CONNECTIONS[-1]].p99_ms
    print(f"p99 at {CONNECTIONS[-1]} connections      {p99:5.2f}x   (target <= {TARGET_P99_RATIO})")


if __name__ == "__main__":
    main()
