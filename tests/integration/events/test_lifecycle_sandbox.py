"""The process lifecycle of a real ``voipbin sandbox`` with a real softphone (baresip):

* SIGTERM drains: the phone gets a BYE for its live call, the process exits 0 within the grace
  period, the stored call is ``hangup`` (``local``/``normal``) and its activeflow ended.
* SIGKILL during live calls and pending webhooks, then a restart on the same database: every call,
  activeflow, groupcall and transcribe is final within 5 s of the start, every webhook is delivered,
  and no event is delivered twice under different ids.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest

from voipbin.demo.baresip import BaresipPhone

from .conftest import ADMIN, Receiver

pytestmark = [pytest.mark.sip_peer, pytest.mark.slow]
VOIPBIN = str(Path(sys.executable).with_name("voipbin"))
N_CALLS = 5
LONG_SLEEP = [{"type": "sleep", "option": {"duration": 120000}}]


def free_port(kind: int = 1) -> int:
    import socket

    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Sandbox:
    """``voipbin sandbox`` as a child process on a database that outlives it."""

    def __init__(self, workdir: Path) -> None:
        self.db = workdir / "voipbin.db"
        self.log = workdir / "sandbox.log"
        self.sip_port = free_port(2)
        self.proc: asyncio.subprocess.Process | None = None
        self.base = ""

    async def start(self, **env: str) -> float:
        """Start and wait for the API; returns the monotonic time the process was started."""
        port = free_port()
        full = {**os.environ, "VOIPBIN_DATABASE_URL": f"sqlite+aiosqlite:///{self.db}",
                "VOIPBIN_SIP_PORT": str(self.sip_port), "VOIPBIN_RTP_PORT_MIN": "41000",
                "VOIPBIN_RTP_PORT_MAX": "41999", "VOIPBIN_HTTPS_PORT": "0", "VOIPBIN_LOG_LEVEL": "INFO",
                "VOIPBIN_WEBHOOK_TIMEOUT_SECONDS": "1", "VOIPBIN_WEBHOOK_RETRY_BASE_SECONDS": "0.1",
                "VOIPBIN_WEBHOOK_RETRY_MAX_SECONDS": "0.5", "VOIPBIN_WEBHOOK_MAX_ATTEMPTS": "1000", **env}
        started = time.monotonic()
        with self.log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                VOIPBIN, "sandbox", "--host", "127.0.0.1", "--port", str(port), env=full, stdout=out, stderr=out)
        self.base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=self.base) as c, asyncio.timeout(60):
            while True:  # a subprocess offers nothing to await but its port
                if self.proc.returncode is not None:
                    raise RuntimeError(f"sandbox exited {self.proc.returncode}: {self.log.read_text()[-3000:]}")
                try:
                    if (await c.get("/openapi.json")).status_code == 200:
                        return started
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)

    async def kill(self, sig: int) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return await asyncio.wait_for(self.proc.wait(), 30)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base, timeout=15)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db) as db:
            return db.execute(sql).fetchall()


def silence(path: Path, seconds: int = 300) -> Path:
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(path), "trim", "0", str(seconds)],
                   check=True)
    return path


async def login(c: httpx.AsyncClient) -> dict[str, str]:
    r = await c.post("/auth/login", json=ADMIN)
    r.raise_for_status()
    return {"token": r.json()["token"]}


async def phone_for(sandbox: Sandbox, c: httpx.AsyncClient, q: dict[str, str], workdir: Path,
                    name: str = "phone") -> BaresipPhone:
    r = await c.post("/v1.0/extensions", params=q, json={"name": name, "detail": "d", "extension": name,
                                                         "password": "phone-pass-1"})
    assert r.status_code == 200, r.text
    workdir = workdir / name
    workdir.mkdir()
    phone = BaresipPhone(workdir, user=name, domain=f"{r.json()['customer_id']}.registrar.voipbin.test",
                         password="phone-pass-1", proxy=("127.0.0.1", sandbox.sip_port),
                         audio_file=silence(workdir / "silence.wav"))
    await phone.start()
    await phone.wait_event("REGISTER_OK")
    return phone


async def dial(c: httpx.AsyncClient, q: dict[str, str], actions: list[dict[str, Any]], to: str = "phone"
               ) -> dict[str, Any]:
    me = (await c.get("/v1.0/numbers", params=q)).json()["result"][0]["number"]
    r = await c.post("/v1.0/calls", params=q, json={
        "source": {"type": "tel", "target": me}, "destinations": [{"type": "extension", "target_name": to}],
        "actions": actions})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_sigterm_byes_live_calls_and_exits_0(tmp_path: Path) -> None:
    sandbox = Sandbox(tmp_path)
    await sandbox.start(VOIPBIN_DRAIN_GRACE_SECONDS="10")
    phone = None
    try:
        async with sandbox.client() as c:
            q = await login(c)
            phone = await phone_for(sandbox, c, q, tmp_path)
            call = (await dial(c, q, LONG_SLEEP))["calls"][0]
            await phone.wait_event("CALL_ESTABLISHED")
            async with asyncio.timeout(10):  # the platform has seen the 200 too (the phone's event comes first)
                while sandbox.rows(f"SELECT status FROM calls WHERE id = '{call['id']}'") != [("progressing",)]:
                    await asyncio.sleep(0.05)
        sent = time.monotonic()
        code = await sandbox.kill(signal.SIGTERM)
        drain_s = time.monotonic() - sent
        closed = await phone.wait_event("CALL_CLOSED", timeout=5)  # the BYE reached the phone
        assert code == 0, sandbox.log.read_text()[-3000:]
        assert drain_s < 10, drain_s
        assert "BYE" in json.dumps(closed) or closed.get("param", "").lower().startswith(("connection reset", "bye"))
        [(status, by, reason)] = sandbox.rows(f"SELECT status, hangup_by, hangup_reason FROM calls WHERE id = '{call['id']}'")
        assert (status, by, reason) == ("hangup", "local", "normal")
        assert sandbox.rows(f"SELECT status FROM activeflows WHERE reference_id = '{call['id']}'") == [("ended",)]
        assert sandbox.rows("SELECT count(*) FROM pods") == [(0,)]  # a clean exit holds nothing
        print(f"drain: SIGTERM to exit {drain_s:.2f} s with 1 live call")
    finally:
        if sandbox.proc is not None and sandbox.proc.returncode is None:
            await sandbox.kill(signal.SIGKILL)
        if phone is not None:
            await phone.stop()


async def test_sigkill_then_restart_ends_everything_and_loses_no_webhook(tmp_path: Path, receiver: Receiver) -> None:
    sandbox = Sandbox(tmp_path)
    receiver.behave = lambda n: 500 if n % 3 == 0 else (30.0 if n % 3 == 1 else 200)  # retries and hung attempts
    await sandbox.start()
    phones: list[BaresipPhone] = []
    try:
        async with sandbox.client() as c:
            q = await login(c)
            r = await c.put("/v1.0/customer", params=q, json={"webhook_method": "POST", "webhook_uri": receiver.url})
            assert r.status_code == 200, r.text
            for name in ("phone", "phone2"):  # baresip takes 4 calls at most
                phones.append(await phone_for(sandbox, c, q, tmp_path, name))
            actions = [{"type": "transcribe_start", "option": {"language": "en-US", "direction": "in"}}, *LONG_SLEEP]
            created = [await dial(c, q, actions, ("phone", "phone2")[i % 2]) for i in range(N_CALLS)]
            call_ids = [x["calls"][0]["id"] for x in created]
            async with asyncio.timeout(60):  # every call answered by the phone and its transcribe running
                while len(sandbox.rows("SELECT id FROM transcribes WHERE status = 'progressing'")) < N_CALLS:
                    await asyncio.sleep(0.1)
        assert await sandbox.kill(signal.SIGKILL) == -signal.SIGKILL
        live = sandbox.rows("SELECT count(*) FROM calls WHERE status = 'progressing'")
        assert live == [(N_CALLS,)]
        pending = sandbox.rows("SELECT count(*) FROM event_outbox WHERE status IN ('pending', 'sending')")[0][0]
        assert pending > 0  # webhooks in backoff or in flight when the process died

        receiver.behave = lambda n: 200
        started = await sandbox.start()
        ready_s = time.monotonic() - started
        async with sandbox.client() as c:
            q = await login(c)
            # reconciled before the API serves: the first answer already shows them final
            async with asyncio.timeout(5):
                finals = [(await c.get(f"/v1.0/calls/{cid}", params=q)).json() for cid in call_ids]
            recovered_s = time.monotonic() - started
            for call in finals:
                assert (call["status"], call["hangup_by"], call["hangup_reason"]) == ("hangup", "local", "failed")
                af = (await c.get(f"/v1.0/activeflows/{call['activeflow_id']}", params=q)).json()
                assert af["status"] == "ended"
                group = (await c.get(f"/v1.0/groupcalls/{call['groupcall_id']}", params=q)).json()
                assert group["status"] == "hangup"
            transcribes = (await c.get("/v1.0/transcribes", params=q)).json()["result"]
            assert len(transcribes) == N_CALLS and {t["status"] for t in transcribes} == {"done"}
            # a hangup and a DELETE of a recovered call work
            r = await c.post(f"/v1.0/calls/{call_ids[0]}/hangup", params=q)
            assert r.status_code == 200 and r.json()["status"] == "hangup"
            r = await c.delete(f"/v1.0/calls/{call_ids[0]}", params=q)
            assert r.status_code == 200 and r.json()["tm_delete"] is not None
        print(f"recovery: API up {ready_s:.2f} s after the restart began, {N_CALLS} calls seen final at "
              f"{recovered_s:.2f} s")

        def all_delivered(rs: list[Any]) -> bool:
            rows = sandbox.rows("SELECT id FROM event_outbox")
            ok = {r.headers["x-voipbin-event-id"] for r in rs if r.answered == 200}
            return {i for (i,) in rows} <= ok

        await receiver.wait_until(all_delivered, timeout=30)
        hangups = {json.loads(r.body)["data"]["id"] for r in receiver.requests
                   if r.answered == 200 and json.loads(r.body)["type"] == "call_hangup"}
        assert set(call_ids) <= hangups
        ids_per_body: dict[bytes, set[str]] = defaultdict(set)
        for r in receiver.requests:
            ids_per_body[r.body].add(r.headers["x-voipbin-event-id"])
        assert all(len(ids) == 1 for ids in ids_per_body.values())  # no event twice under different ids
    finally:
        if sandbox.proc is not None and sandbox.proc.returncode is None:
            await sandbox.kill(signal.SIGTERM)
        for phone in phones:
            await phone.stop()
