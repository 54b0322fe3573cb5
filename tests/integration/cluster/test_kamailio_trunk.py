"""Behind the SIP edge (issue 19): a trunk trusted by its address still is, a forged Via is not, and
the dispatcher list is read again by a running Kamailio.

A media pod (in-process, real SIP on 127.0.0.1) trusts Kamailio (``VOIPBIN_SIP_TRUSTED_PROXIES``) and
a trunk at 127.0.0.1:<trunk port> (``VOIPBIN_TRUNK_ALLOWED_HOSTS`` pins the port: every address here
is a loopback one). The trunk's call through Kamailio is taken as the trunk's (its number's flow
answers); an INVITE whose Via claims the trunk's address but comes from another port is not, through
Kamailio (it rewrites ``received``/``rport``) or straight to the pod from an address that is no proxy
(127.0.0.2): both get 403 (an unknown caller domain, as any stranger). ``scripts/cluster.sh reload``
rewrites the dispatcher list (configured pods and those heartbeating in ``pods``) and Kamailio reads it.
Phones' INVITEs through Kamailio pass the digest with their own address (from their Via)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from kamailio_support import REPO, Kamailio, pod_uri
from tests_support.legs import RtpCaller
from tests_support.net import free_port
from voipbin.config import Settings
from voipbin.demo.baresip import BaresipPhone
from voipbin.media.sdp import create_offer
from voipbin.media.session import RtpSession
from voipbin.runtime import Runtime
from voipbin.sip.ua import UserAgent

pytestmark = [pytest.mark.sip_peer]

CALLER = "+15551230000"


@pytest_asyncio.fixture
async def pod(sqlite_url: str, trunk: UserAgent) -> AsyncIterator[Any]:
    port = trunk.stack.port
    rt = Runtime(Settings(_env_file=None, database_url=sqlite_url, sip_host="127.0.0.1", sip_port=0,  # type: ignore[call-arg]
                          sip_trusted_proxies="127.0.0.1", trunk_uri=f"sip:127.0.0.1:{port}",
                          trunk_allowed_hosts=f"127.0.0.1:{port}", webhook_worker=False))
    await rt.start()
    seed = await rt.seed_sandbox()
    flow = await rt.flows.create(seed.customer_id, {"name": "trunk", "detail": "", "actions": [
        {"type": "answer"}, {"type": "sleep", "option": {"duration": 60000}}]})
    number = await rt.numbers.find_active(seed.number)
    assert number is not None
    await rt.numbers.update(seed.customer_id, number.id, {"call_flow_id": flow.id})
    rt.seed = seed
    try:
        yield rt
    finally:
        await rt.stop()


def forged_invite(number: str, target: tuple[str, int], me: tuple[str, int], vias: list[str]) -> bytes:
    """An INVITE to ``number`` at ``target`` whose Vias are ``vias`` (forged), sent from ``me``."""
    sdp = create_offer("127.0.0.1", 40000).serialize()
    head = "".join(f"Via: {v}\r\n" for v in vias)
    return (f"INVITE sip:{number}@{target[0]}:{target[1]} SIP/2.0\r\n{head}Max-Forwards: 70\r\n"
            f"From: <sip:{CALLER}@127.0.0.1>;tag=forged\r\nTo: <sip:{number}@127.0.0.1>\r\n"
            f"Call-ID: forged-{time.time_ns()}@127.0.0.1\r\nCSeq: 1 INVITE\r\n"
            f"Contact: <sip:{CALLER}@{me[0]}:{me[1]}>\r\nContent-Type: application/sdp\r\n"
            f"Content-Length: {len(sdp)}\r\n\r\n").encode() + sdp


def final_status(sock: socket.socket, timeout: float = 5.0) -> int:
    """The first final (>= 200) response's status received on ``sock``."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        first = sock.recv(65535).split(b"\r\n", 1)[0].split()
        if len(first) > 1 and first[0] == b"SIP/2.0" and int(first[1]) >= 200:
            return int(first[1])
    raise TimeoutError("no final response")


async def test_a_trunk_behind_kamailio_is_trusted_and_a_forged_via_is_not(pod: Any, trunk: UserAgent,
                                                                         tmp_path: Path) -> None:
    edge = Kamailio(tmp_path / "kamailio", pods=[("127.0.0.1", pod.sip.port)])
    await edge.start()
    rtp = await RtpSession.open("127.0.0.1")
    try:
        await edge.wait_pods({pod_uri("127.0.0.1", pod.sip.port): True})
        number = pod.seed.number
        # the trunk's call through Kamailio: the pod sees Kamailio's address, and the trunk's in its Via
        call = RtpCaller(rtp)
        uri = f"sip:{number}@127.0.0.1:{edge.port}"
        session = await trunk.invite(request_uri=uri, to_uri=uri, from_uri=f"sip:{CALLER}@127.0.0.1",
                                     destination=("127.0.0.1", edge.port), sdp=call.offer.serialize(), handler=call)
        await asyncio.wait_for(call.answered.wait(), 10)
        await session.bye()
        await asyncio.wait_for(call.ended.wait(), 10)

        trunk_port = trunk.stack.port
        claims_trunk = f"SIP/2.0/UDP 127.0.0.1:{trunk_port};branch=z9hG4bKforged{time.time_ns()};received=127.0.0.1;rport={trunk_port}"
        # through Kamailio, from another port: Kamailio stamps the real port over the forged one
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            me = sock.getsockname()
            sock.sendto(forged_invite(number, ("127.0.0.1", edge.port), me, [claims_trunk]), ("127.0.0.1", edge.port))
            assert await asyncio.to_thread(final_status, sock) == 403
        # straight to the pod from an address that is no proxy, with a Via as if Kamailio had sent it
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.2", 0))
            me = sock.getsockname()
            top = f"SIP/2.0/UDP {me[0]}:{me[1]};branch=z9hG4bKtop{time.time_ns()};rport"
            sock.sendto(forged_invite(number, ("127.0.0.1", pod.sip.port), me, [top, claims_trunk]),
                        ("127.0.0.1", pod.sip.port))
            assert await asyncio.to_thread(final_status, sock) == 403
        calls, _ = await pod.calls.list(pod.seed.customer_id, None, None)
        assert len(calls) == 1  # the trunk's: the forged INVITEs made none
    finally:
        rtp.close()
        edge.stop()


async def test_a_phone_behind_kamailio_passes_the_invite_digest_at_its_own_address(pod: Any, tmp_path: Path) -> None:
    """Two baresip phones register and call each other through Kamailio: the INVITE's digest, which
    binds its nonce to the caller's address, now takes that address from the phone's Via (as the
    REGISTER's takes it from the Path), and the challenge and its answer still agree."""
    edge = Kamailio(tmp_path / "kamailio", pods=[("127.0.0.1", pod.sip.port)])
    await edge.start()
    domain = f"{pod.seed.customer_id}.registrar.voipbin.test"
    quiet = tmp_path / "quiet.wav"
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(quiet), "trim", "0", "60"], check=True)
    phones: list[BaresipPhone] = []
    try:
        await edge.wait_pods({pod_uri("127.0.0.1", pod.sip.port): True})
        for ext in ("5001", "5002"):
            await pod.extensions.create(pod.seed.customer_id, {"name": f"edge{ext}", "detail": "", "extension": ext,
                                                               "password": f"edge-{ext}-Secret"})
            (tmp_path / ext).mkdir()
            phone = BaresipPhone(tmp_path / ext, user=ext, domain=domain, password=f"edge-{ext}-Secret",
                                 proxy=("127.0.0.1", edge.port), audio_file=quiet)
            phones.append(phone)
            await phone.start()
            await asyncio.wait_for(phone.wait_event("REGISTER_OK"), 20)
        caller, callee = phones
        await caller.command("dial", f"sip:{callee.user}@{domain}")
        await asyncio.wait_for(callee.wait_event("CALL_ESTABLISHED"), 20)
        await asyncio.wait_for(caller.wait_event("CALL_ESTABLISHED"), 20)
        await caller.hangup()
        await asyncio.wait_for(callee.wait_event("CALL_CLOSED"), 20)
    finally:
        for phone in phones:
            await phone.stop()
        edge.stop()


@pytest.mark.postgres
async def test_a_running_kamailio_reads_a_rewritten_dispatcher_list(tmp_path: Path, postgres_url: str) -> None:
    first, second, elsewhere = (("127.0.0.1", free_port()) for _ in range(3))
    edge = Kamailio(tmp_path / "kamailio", pods=[first])
    await edge.start()
    try:
        assert set(edge.dispatcher_state()) == {pod_uri(*first)}
        edge.set_pods([first, second])
        assert set(edge.dispatcher_state()) == {pod_uri(*first), pod_uri(*second)}
        edge.set_pods([second])
        assert set(edge.dispatcher_state()) == {pod_uri(*second)}
        # scripts/cluster.sh reload: its configured media pods and every media pod heartbeating in the database
        dsn, _, db = postgres_url.replace("postgresql+asyncpg://", "postgresql://", 1).rpartition("/")
        conn = await asyncpg.connect(f"{dsn}/{db}")
        try:
            await conn.execute("INSERT INTO pods (id, role, sip_host, sip_port, load, tm_heartbeat, tm_create) "
                               "VALUES ('media-elsewhere', 'media', $1, $2, 0, now() at time zone 'utc', "
                               "now() at time zone 'utc')", *elsewhere)
        finally:
            await conn.close()
        env = {**os.environ, "CLUSTER_DIR": str(tmp_path), "CLUSTER_PG_DSN": dsn, "CLUSTER_DB": db,
               "CLUSTER_MEDIA_SIP_PORTS": str(first[1]), "CLUSTER_PYTHON": sys.executable}
        done = await asyncio.to_thread(subprocess.run, ["bash", str(REPO / "scripts" / "cluster.sh"), "reload"],
                                       env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert set(edge.dispatcher_state()) == {pod_uri(*first), pod_uri(*elsewhere)}
    finally:
        edge.stop()
