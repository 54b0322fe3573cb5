"""Reference for ``bench/media_capacity.py``: the minimal G.711 RTP sender a media server could be.

uvloop, one 20 ms timer on absolute deadlines (deadline_n = start + n * 20 ms, ``loop.call_at``), N UDP
sockets, one pre-encoded 160-byte PCMU payload per stream (a 440 Hz tone) behind a 12-byte RTP header
(RFC 3550 §5.1) whose sequence number and timestamp are updated in place, one ``sendto`` per stream per
tick, in one burst. No mixing, jitter buffer, DTMF or sources: the floor Python + uvloop set on this
machine for pacing and CPU per packet.

What any RTP endpoint must do, it does: each stream has its own random SSRC and random initial sequence
number and timestamp (RFC 3550 §5.1), and each socket is bound and watched for reading by the loop, as a
media server's is to receive the peer's RTP on the port it sends from (symmetric RTP, RFC 4961). The
watch is not free: the kernel wakes the loop's epoll entry on every send's completion (~5 % more CPU
per packet, measured side by side; ``receive=False`` leaves it out).

    .venv/bin/python bench/reference/uvloop_rtp_sender.py --port 40000 --calls 100 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import math
import secrets
import socket
import struct
import time

import uvloop

FRAME_S = 0.020
SAMPLES_PER_FRAME = 160
_HEADER = struct.Struct("!BBHII")
_SEQ_TS = struct.Struct("!HI")


def _payload() -> bytes:
    """One 20 ms frame of a 440 Hz tone in G.711 mu-law (160 bytes; the exact bytes do not matter)."""
    return bytes(0xFF ^ int(127 * math.sin(2 * math.pi * 440 * i / 8000) + 128) & 0xFF for i in range(SAMPLES_PER_FRAME))


def _drain(sock: socket.socket) -> None:
    """What the peer sent (nothing, in the bench): read and dropped."""
    try:
        while True:
            sock.recv(2048)
    except OSError:
        pass


async def send(
    ports: list[int], seconds: float, host: str = "127.0.0.1", warmup_s: float = 0.0, receive: bool = True
) -> dict:
    """Send one stream to each of ``ports`` for ``warmup_s + seconds``; returns, over the last ``seconds``:
    ``{"packets", "cpu_s" (process CPU), "wall_s", "window_ns" (CLOCK_REALTIME start, end),
    "first_deadline_s" (time.monotonic() of tick 0), "late_ticks"}``. receive: watch each socket for
    reading (what a media server does); False: send-only sockets."""
    loop = asyncio.get_running_loop()
    payload = _payload()
    streams = []
    for port in ports:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.bind((host, 0))
        if receive:
            loop.add_reader(sock.fileno(), _drain, sock)
        packet = bytearray(_HEADER.size + len(payload))
        _HEADER.pack_into(packet, 0, 0x80, 0, 0, 0, secrets.randbits(32))
        packet[_HEADER.size:] = payload
        streams.append((sock, packet, (host, port), secrets.randbits(16), secrets.randbits(32)))
    done = loop.create_future()
    start = loop.time() + FRAME_S
    state = {"tick": 0, "packets": 0, "late": 0}
    warmup_ticks = int(warmup_s / FRAME_S)
    end_tick = warmup_ticks + int(seconds / FRAME_S)
    marks: list[tuple[int, float, float, int]] = []  # (packets, process CPU, monotonic, realtime ns)

    def tick() -> None:
        n = state["tick"]
        if n == warmup_ticks:
            marks.append((state["packets"], time.process_time(), time.monotonic(), time.time_ns()))
        elapsed = n * SAMPLES_PER_FRAME
        for sock, packet, address, first_seq, first_timestamp in streams:
            _SEQ_TS.pack_into(packet, 2, (first_seq + n) & 0xFFFF, (first_timestamp + elapsed) & 0xFFFFFFFF)
            sock.sendto(packet, address)
        state["packets"] += len(streams)
        n += 1
        deadline = start + n * FRAME_S
        if loop.time() > deadline:
            state["late"] += 1
        state["tick"] = n
        if n >= end_tick:
            marks.append((state["packets"], time.process_time(), time.monotonic(), time.time_ns()))
            done.set_result(None)
        else:
            loop.call_at(deadline, tick)

    first_deadline = time.monotonic() + (start - loop.time())
    loop.call_at(start, tick)
    await done
    (packets0, cpu0, wall0, real0), (packets1, cpu1, wall1, real1) = marks
    result = {"packets": packets1 - packets0, "cpu_s": cpu1 - cpu0, "wall_s": wall1 - wall0, "window_ns": (real0, real1),
              "first_deadline_s": first_deadline, "late_ticks": state["late"]}
    for sock, *_ in streams:
        if receive:
            loop.remove_reader(sock.fileno())
        sock.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True, help="first receiver port; stream i goes to port + i")
    parser.add_argument("--calls", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    result = uvloop.run(send([args.port + i for i in range(args.calls)], args.seconds, args.host))
    print(f"{result['packets']} packets, {1e6 * result['cpu_s'] / max(1, result['packets']):.2f} us CPU per packet, "
          f"{result['late_ticks']} late ticks")


if __name__ == "__main__":
    main()
