"""API throughput: GET /v1.0/extensions/{id} against one `voipbin sandbox` process (1 worker).

Prints requests/s and p50/p99 latency (8 keep-alive connections by default; more connections add
queueing delay to every percentile). Load comes from `wrk` (Debian package) when installed,
otherwise from an asyncio httpx client. Target on the 2-core dev machine: >= 1,500 req/s,
p99 <= 20 ms.

    .venv/bin/python bench/api_throughput.py [--seconds 10] [--connections 32]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from tests_support.processes import SandboxProcess  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(url: str, seconds: int, connections: int) -> tuple[float, float, float]:
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    # the "Latency Distribution" rows only ("  50%    1.23ms"): the Stdev column's "75.50%" must not match
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)\s*$", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)\s*$", out, re.M).group(1))  # type: ignore[union-attr]
    if "Non-2xx" in out:
        raise SystemExit(f"non-2xx responses during the run:\n{out}")
    return rps, p50, p99


async def run_httpx(url: str, seconds: int, connections: int) -> tuple[float, float, float]:
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
    return len(latencies) / elapsed, q[49], q[98]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8, help="concurrent keep-alive connections")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sandbox = SandboxProcess(Path(tmp), free_port(), env={"VOIPBIN_LOG_LEVEL": "WARNING"}).start()
        try:
            token = sandbox.login()
            ext = httpx.post(f"{sandbox.base_url}/v1.0/extensions", params={"token": token}, json={
                "name": "bench", "detail": "bench", "extension": "bench1", "password": "bench-pass-1"}).json()
            url = f"{sandbox.base_url}/v1.0/extensions/{ext['id']}?token={token}"
            httpx.get(url).raise_for_status()
            tool = "wrk" if shutil.which("wrk") else "httpx"
            if tool == "wrk":  # a first run warms the server (caches, and the speech models loading at start)
                run_wrk(url, 5, args.connections)
                rps, p50, p99 = run_wrk(url, args.seconds, args.connections)
            else:
                rps, p50, p99 = asyncio.run(run_httpx(url, args.seconds, args.connections))
        finally:
            sandbox.stop()
    print(f"GET /v1.0/extensions/{{id}}  load={tool} connections={args.connections} seconds={args.seconds}")
    print(f"requests/s {rps:8.0f}   (target >= 1500)")
    print(f"p50 ms     {p50:8.2f}")
    print(f"p99 ms     {p99:8.2f}   (target <= 20)")


if __name__ == "__main__":
    main()
