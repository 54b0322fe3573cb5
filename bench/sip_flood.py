#!/usr/bin/env python3
"""The burst of ``bench/sip_register.py --burst``: REGISTERs without credentials, fire and forget.

Sends ``--rate`` REGISTERs/s (each a new Call-ID, users 1000.. in turn, no retransmission) for ``--seconds``
from ``--sources`` addresses 127.0.1.1 upwards (the registrar's token bucket is per source IP), reads
whatever comes back, and prints one JSON line: messages sent and answers by status ("401", "503", ...).
A separate process with no per-request state, so that it can offer many times what the registrar
(and the load client measuring it) can handle.

    .venv/bin/python bench/sip_flood.py --port 5060 --domain c1.registrar.voipbin.test --rate 5000 --seconds 5
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import socket
import time
from collections import Counter


def register(user: str, domain: str, src: tuple[str, int], n: int) -> bytes:
    return (f"REGISTER sip:{domain} SIP/2.0\r\nVia: SIP/2.0/UDP {src[0]}:{src[1]};branch=z9hG4bKfl{n}x{os.getpid()};"
            f"rport\r\nMax-Forwards: 70\r\nFrom: <sip:{user}@{domain}>;tag=fl{n}\r\nTo: <sip:{user}@{domain}>\r\n"
            f"Call-ID: fl{n}x{os.getpid()}\r\nCSeq: 1 REGISTER\r\nContact: <sip:{user}@{src[0]}:{src[1]}>\r\n"
            f"Expires: 3600\r\nUser-Agent: sipp-flood\r\nContent-Length: 0\r\n\r\n").encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--domain", required=True)
    parser.add_argument("--rate", type=float, required=True, help="REGISTERs per second")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--sources", type=int, default=16)
    parser.add_argument("--linger", type=float, default=2.0, help="seconds to keep reading answers after the last send")
    args = parser.parse_args()
    socks = []
    selector = selectors.DefaultSelector()
    for i in range(args.sources):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((f"127.0.1.{1 + i}", 0))
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
        socks.append(sock)
    dest = (args.host, args.port)
    answers: Counter[str] = Counter()
    sent = 0
    start = time.monotonic()
    stop = start + args.seconds
    while (now := time.monotonic()) < stop + args.linger:
        due = min(int((now - start) * args.rate), int(args.seconds * args.rate))
        while sent < due:
            sock = socks[sent % len(socks)]
            try:
                sock.sendto(register(str(1000 + sent % args.users), args.domain, sock.getsockname(), sent), dest)
            except BlockingIOError:
                answers["send_dropped"] += 1
            sent += 1
        for key, _ in selector.select(timeout=0.001):
            while True:
                try:
                    data = key.fileobj.recv(65535)  # type: ignore[union-attr]
                except BlockingIOError:
                    break
                answers[data[8:11].decode(errors="replace")] += 1
    print(json.dumps({"sent": sent, "answers": dict(answers)}), flush=True)


if __name__ == "__main__":
    main()
