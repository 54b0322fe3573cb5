#!/usr/bin/env python3
"""REGISTER throughput of the SIP stack with digest authentication.

Starts the registrar (SipStack + Registrar + in-memory stores) in a child process pinned to one CPU,
then drives it from this process with an asyncio load client over UDP: each virtual UA sends
REGISTER, answers the 401 (MD5 digest, qop=auth) and waits for the 200 - two transactions per
registration. Prints registrations/s, transactions/s, p50/p99 latency, failures and the server's
CPU time per registration.

    .venv/bin/python bench/sip_register.py --duration 10 --concurrency 64

The client spreads its sockets over 127.0.0.2-127.0.0.9 (the stack's per-source token bucket is
2000 messages/s per IP by default).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

CUSTOMER = "bench"
DOMAIN = f"{CUSTOMER}.registrar.voipbin.test"
PASSWORD = "bench-password"


# -- server (child process) -------------------------------------------------------------------------
def serve(port: int, users: int, cpu: int | None) -> None:
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    from voipbin.sip.location import InMemoryCredentialStore, InMemoryLocationService
    from voipbin.sip.registrar import Registrar
    from voipbin.sip.stack import SipStack, StackConfig

    async def main() -> None:
        creds = InMemoryCredentialStore()
        for i in range(users):
            creds.add(CUSTOMER, str(1000 + i), PASSWORD)
        registrar = Registrar(sip_domain="voipbin.test", credentials=creds,
                              location=InMemoryLocationService(), nonce_secret=os.urandom(16))
        stack = SipStack(StackConfig(host="127.0.0.1", port=port))
        stack.route("REGISTER", registrar.on_register)
        bound = await stack.start()
        await registrar.start()
        print(f"READY {bound}", flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)  # parent closes stdin to stop us
        print(f"STATS {dict(stack.stats)} {registrar.stats}", flush=True)
        await registrar.stop()
        await stack.stop()

    asyncio.run(main())


# -- load client ------------------------------------------------------------------------------------
NONCE_RE = re.compile(rb'WWW-Authenticate: Digest realm="([^"]+)", nonce="([^"]+)", algorithm=MD5')
STATUS_RE = re.compile(rb"^SIP/2\.0 (\d{3})")
CALLID_RE = re.compile(rb"\r\nCall-ID: ([^\r]+)\r\n")


def register_bytes(user: str, src: tuple[str, int], call_id: str, cseq: int, branch: str,
                   auth: str | None) -> bytes:
    lines = [
        f"REGISTER sip:{DOMAIN} SIP/2.0",
        f"Via: SIP/2.0/UDP {src[0]}:{src[1]};branch=z9hG4bK{branch};rport",
        "Max-Forwards: 70",
        f"From: <sip:{user}@{DOMAIN}>;tag={call_id[:8]}",
        f"To: <sip:{user}@{DOMAIN}>",
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
    def __init__(self) -> None:
        self.waiters: dict[bytes, asyncio.Future[bytes]] = {}
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:  # type: ignore[override]
        m = CALLID_RE.search(data)
        if m:
            fut = self.waiters.pop(m.group(1), None)
            if fut is not None and not fut.done():
                fut.set_result(data)


async def transaction(client: Client, data: bytes, call_id: str, dest: tuple[str, int]) -> bytes:
    """Send with RFC 3261 Timer E-style retransmission; raises TimeoutError after 32 s."""
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    client.waiters[call_id.encode()] = fut
    interval, deadline = 0.5, time.monotonic() + 32
    while True:
        assert client.transport is not None
        client.transport.sendto(data, dest)
        try:
            return await asyncio.wait_for(asyncio.shield(fut), interval)
        except asyncio.TimeoutError:
            if time.monotonic() > deadline:
                client.waiters.pop(call_id.encode(), None)
                raise
            interval = min(interval * 2, 4.0)


async def ua_loop(n: int, client: Client, src: tuple[str, int], dest: tuple[str, int], users: int,
                  stop_at: float, results: dict) -> None:
    seq = 0
    while time.monotonic() < stop_at:
        seq += 1
        user = str(1000 + (n + seq * 7919) % users)
        call_id = f"b{n}-{seq}-{os.getpid()}"
        try:
            t0 = time.perf_counter()
            first = await transaction(client, register_bytes(user, src, call_id, 1, f"{n}x{seq}a", None),
                                      call_id, dest)
            t1 = time.perf_counter()
            m = NONCE_RE.search(first)
            if not m:
                results["failed"] += 1
                continue
            realm, nonce = m.group(1).decode(), m.group(2).decode()
            cnonce = f"{n:x}{seq:x}"
            ha1 = md5(f"{user}:{realm}:{PASSWORD}")
            uri = f"sip:{DOMAIN}"
            resp = md5(f"{ha1}:{nonce}:00000001:{cnonce}:auth:{md5('REGISTER:' + uri)}")
            auth = (f'Authorization: Digest username="{user}", realm="{realm}", nonce="{nonce}", '
                    f'uri="{uri}", response="{resp}", algorithm=MD5, qop=auth, nc=00000001, '
                    f'cnonce="{cnonce}"')
            second = await transaction(client, register_bytes(user, src, call_id, 2, f"{n}x{seq}b", auth),
                                       call_id, dest)
            t2 = time.perf_counter()
        except asyncio.TimeoutError:
            results["failed"] += 1
            continue
        status = STATUS_RE.match(second)
        if status is None or status.group(1) != b"200":
            results["failed"] += 1
            continue
        results["tx_latency"] += [t1 - t0, t2 - t1]
        results["reg_latency"].append(t2 - t0)
        results["ok"] += 1


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def drive(args: argparse.Namespace, port: int, server_pid: int) -> dict:
    loop = asyncio.get_running_loop()
    clients = []
    for i in range(args.sources):
        host = f"127.0.0.{2 + i}"
        _, proto = await loop.create_datagram_endpoint(Client, local_addr=(host, 0))
        clients.append((proto, proto.transport.get_extra_info("sockname")))
    results: dict = {"ok": 0, "failed": 0, "tx_latency": [], "reg_latency": []}
    # warm-up
    warm_stop = time.monotonic() + 1.0
    await asyncio.gather(*(ua_loop(n, *clients[n % len(clients)], ("127.0.0.1", port), args.users,
                                   warm_stop, {"ok": 0, "failed": 0, "tx_latency": [], "reg_latency": []})
                           for n in range(args.concurrency)))
    cpu0, t0 = cpu_seconds(server_pid), time.monotonic()
    stop_at = t0 + args.duration
    await asyncio.gather(*(ua_loop(n, *clients[n % len(clients)], ("127.0.0.1", port), args.users,
                                   stop_at, results) for n in range(args.concurrency)))
    results["elapsed"] = time.monotonic() - t0
    results["server_cpu"] = cpu_seconds(server_pid) - cpu0
    return results


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 10) - 1] if len(values) > 1 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds (default 10)")
    parser.add_argument("--concurrency", type=int, default=64, help="registrations in flight")
    parser.add_argument("--users", type=int, default=1000, help="distinct extensions")
    parser.add_argument("--sources", type=int, default=8, help="client source IPs 127.0.0.2..")
    parser.add_argument("--server-cpu", type=int, default=0, help="CPU the server is pinned to")
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve, args.users, args.server_cpu)
        return
    server = subprocess.Popen([sys.executable, __file__, "--serve", "0", "--users", str(args.users),
                               "--server-cpu", str(args.server_cpu)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None and server.stdin is not None
    line = server.stdout.readline()
    if not line.startswith("READY"):
        raise SystemExit(f"server failed to start: {line!r}")
    port = int(line.split()[1])
    if hasattr(os, "sched_setaffinity") and os.cpu_count() and os.cpu_count() > 1:  # type: ignore[operator]
        os.sched_setaffinity(0, set(range(os.cpu_count())) - {args.server_cpu})  # type: ignore[arg-type]
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    results = asyncio.run(drive(args, port, server.pid))
    server.stdin.close()
    stats = server.stdout.readline().strip()
    server.wait(timeout=10)
    ok, elapsed = results["ok"], results["elapsed"]
    tx = results["tx_latency"]
    reg = results["reg_latency"]
    print(f"REGISTER with digest auth over UDP, {args.concurrency} in flight, {args.users} users, "
          f"server pinned to CPU {args.server_cpu}")
    print(f"registrations:   {ok} ok, {results['failed']} failed in {elapsed:.1f} s")
    print(f"throughput:      {ok / elapsed:,.0f} registrations/s = {2 * ok / elapsed:,.0f} transactions/s")
    print(f"transaction latency: p50 {pct(tx, 50) * 1e3:.2f} ms, p99 {pct(tx, 99) * 1e3:.2f} ms, "
          f"max {max(tx) * 1e3:.2f} ms")
    print(f"registration latency (2 transactions): p50 {pct(reg, 50) * 1e3:.2f} ms, "
          f"p99 {pct(reg, 99) * 1e3:.2f} ms")
    print(f"server CPU:      {results['server_cpu']:.2f} s = {results['server_cpu'] / max(ok, 1) * 1e6:.0f} µs "
          f"per registration ({ok / max(results['server_cpu'], 1e-9):,.0f} registrations per CPU-second)")
    print(f"server {stats}")


if __name__ == "__main__":
    main()
