"""A ``voipbin sandbox`` process is SIGKILLed while webhook deliveries are pending and in flight,
then restarted on the same database: every event arrives at least once, signed, none lost."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
from pathlib import Path

import httpx
import pytest

from .conftest import ADMIN, Receiver

pytestmark = pytest.mark.slow
VOIPBIN = str(Path(sys.executable).with_name("voipbin"))
N_EXTENSIONS = 12


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start_sandbox(db: Path, log: Path) -> tuple[asyncio.subprocess.Process, str]:
    port = free_port()
    env = {**os.environ, "VOIPBIN_DATABASE_URL": f"sqlite+aiosqlite:///{db}", "VOIPBIN_SIP_ENABLED": "false",
           "VOIPBIN_SIP_PORT": str(free_port()), "VOIPBIN_WEBHOOK_TIMEOUT_SECONDS": "1",
           "VOIPBIN_WEBHOOK_RETRY_BASE_SECONDS": "0.1", "VOIPBIN_WEBHOOK_RETRY_MAX_SECONDS": "0.5",
           "VOIPBIN_WEBHOOK_MAX_ATTEMPTS": "1000", "VOIPBIN_LOG_LEVEL": "WARNING"}
    with log.open("ab") as out:
        proc = await asyncio.create_subprocess_exec(VOIPBIN, "sandbox", "--host", "127.0.0.1", "--port", str(port),
                                                    env=env, stdout=out, stderr=out)
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base) as c, asyncio.timeout(60):
        while True:  # a subprocess offers nothing to await but its port
            if proc.returncode is not None:
                raise RuntimeError(f"sandbox exited {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                if (await c.get("/openapi.json")).status_code == 200:
                    return proc, base
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)


async def test_sigkill_with_pending_deliveries_loses_nothing(tmp_path: Path, receiver: Receiver) -> None:
    from voipbin.events.signature import verify

    db, log = tmp_path / "voipbin.db", tmp_path / "sandbox.log"
    # phase 1: the receiver fails every other request and hangs on the rest (deliveries in backoff and in flight)
    receiver.behave = lambda n: 500 if n % 2 else 30.0
    proc, base = await start_sandbox(db, log)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as c:
            token = (await c.post("/auth/login", json=ADMIN)).json()["token"]
            q = {"token": token}
            secret = (await c.post("/v1.0/customer/webhook_secret/rotate", params=q)).json()["webhook_secret"]
            r = await c.put("/v1.0/customer", params=q, json={"webhook_method": "POST", "webhook_uri": receiver.url})
            assert r.status_code == 200
            created = []
            for i in range(N_EXTENSIONS):
                r = await c.post("/v1.0/extensions", params=q,
                                 json={"name": f"e{i}", "detail": "d", "extension": f"80{i:02d}", "password": "phone-pass-1"})
                assert r.status_code == 200
                created.append(r.json()["id"])
        await receiver.wait_until(lambda rs: len(rs) >= 8, timeout=20)
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not any(r.answered is not None and r.answered < 300 for r in receiver.requests)
    states = dict(sqlite3.connect(db).execute("SELECT status, count(*) FROM event_outbox GROUP BY status").fetchall())
    assert states.get("delivered", 0) == 0 and sum(states.values()) == N_EXTENSIONS + 1, states
    assert states.get("sending", 0) >= 1, states  # some attempts were in flight when the process died

    # phase 2: the receiver is healthy; a new process on the same database delivers everything
    receiver.behave = lambda n: 200
    proc, base = await start_sandbox(db, log)
    try:
        def all_delivered(rs: list) -> bool:  # type: ignore[type-arg]
            ok = [json.loads(r.body) for r in rs if r.answered == 200]
            return {d["data"]["id"] for d in ok if d["type"] == "extension_created"} == set(created) \
                and any(d["type"] == "customer_updated" for d in ok)

        await receiver.wait_until(all_delivered, timeout=30)
        for r in receiver.requests:
            assert verify(secret, r.body, r.headers["x-voipbin-signature"])
        ids = {r.headers["x-voipbin-event-id"] for r in receiver.requests}
        assert len(ids) == N_EXTENSIONS + 1  # retries reuse the event id: receivers can deduplicate
        async with asyncio.timeout(10):
            while True:  # the worker records the last outcomes just after the receiver answered
                states = dict(sqlite3.connect(db).execute(
                    "SELECT status, count(*) FROM event_outbox GROUP BY status").fetchall())
                if states == {"delivered": N_EXTENSIONS + 1}:
                    break
                await asyncio.sleep(0.05)
    finally:
        proc.terminate()
        await proc.wait()
