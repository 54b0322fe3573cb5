"""A voipbin cluster of real processes for tests and benches (issue 19): ``voipbin serve --role ...``
pods on one PostgreSQL database and one NATS server.

How to use it (H4: the Kamailio test and bench put Kamailio in front of the media pods):

    cluster = Cluster(tmp_path, db_url=postgres_url, bus_url=NATS_URL)   # postgres_url: tests/conftest.py
    seed = await cluster.seed()                      # admin@localhost, its customer, +15550100000 (no pod yet)
    api = await cluster.start("api")                 # REST + WebSocket on api.api_port (base_url)
    m1 = await cluster.start("media")                # SIP on 127.0.0.1:m1.sip_port (UDP+TCP), RTP m1.rtp_ports
    m2 = await cluster.start("media", env={"VOIPBIN_SIP_ADVERTISED_HOST": "10.0.0.2"})
    worker = await cluster.start("worker")           # webhooks + reaping of dead pods
    token = await api.login()
    ...
    m1.kill()                                        # SIGKILL: a crash (its calls end within 10 s)
    await cluster.restart(m1)                        # same pod_id, ports and work dir
    await cluster.stop_all()                         # SIGTERM every pod (drain), in a finally

``start`` returns once the pod is ready: an api pod answers HTTP, every pod has its row in ``pods``
(a media pod's row carries its SIP address: ``sip_host``/``sip_port``, and its live calls: ``load``).
Each pod runs in its own directory (``<workdir>/<pod_id>``: ``pod.log``, and for a media pod with
the virtual PSTN ``var/virtual-phone/*.wav``, what the phone of each tel call heard). ``env`` adds or
overrides ``VOIPBIN_*`` settings of one pod; the settings that matter for a SIP edge are
``VOIPBIN_SIP_HOST`` (bind address, default 127.0.0.1), ``VOIPBIN_SIP_PORT`` (``sip_port``),
``VOIPBIN_SIP_ADVERTISED_HOST`` (written in Via/Contact/SDP), ``VOIPBIN_RTP_PORT_MIN``/``MAX``,
``VOIPBIN_ROLE`` and ``VOIPBIN_POD_ID``. ``media_env`` (constructor) is added to every media pod
(default: the sandbox's virtual PSTN for tel destinations and offline speech).
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from tests_support.net import ADMIN_PASSWORD, ADMIN_USERNAME, free_port
from tests_support.processes import spawn_voipbin, stop_process
from voipbin.events.model import Event

JWT_SECRET = "cluster-test-secret-" + "x" * 32
NUMBER_POOL = "+15550100000-+15550109999"
#: how long a pod may take to be ready (seconds): four pods importing the speech stack at once on a busy
#: 2-core machine took over 60 s
READY_TIMEOUT_S = 120.0
SANDBOX_MEDIA_ENV = {"VOIPBIN_SANDBOX_VIRTUAL_PSTN": "true", "VOIPBIN_SPEECH_OFFLINE_FALLBACK": "true"}
_rtp_blocks = itertools.count()


@dataclass
class Pod:
    """One ``voipbin serve --role <role>`` child process."""

    role: str
    pod_id: str
    workdir: Path
    env: dict[str, str]
    api_port: int = 0
    sip_port: int = 0
    rtp_ports: tuple[int, int] = (0, 0)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "pod.log"

    @property
    def recordings(self) -> Path:
        """Where this media pod's virtual phones record what they hear."""
        return self.workdir / "var" / "virtual-phone"

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def spawn(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = spawn_voipbin(["serve", "--role", self.role], cwd=self.workdir, env=self.env,
                                  log_path=self.log_path)

    def kill(self) -> None:
        """SIGKILL (a crash: no drain, no goodbye)."""
        self.stop(signal.SIGKILL)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Send ``sig`` and wait; returns the exit code."""
        return stop_process(self.proc, sig, timeout)

    async def login(self, username: str = ADMIN_USERNAME, password: str = ADMIN_PASSWORD) -> str:
        async with httpx.AsyncClient(base_url=self.base_url) as client:
            r = await client.post("/auth/login", json={"username": username, "password": password})
            r.raise_for_status()
            return str(r.json()["token"])


@dataclass
class Cluster:
    """Pods sharing ``db_url`` (a migrated PostgreSQL database, ``postgresql+asyncpg://``) and ``bus_url``."""

    workdir: Path
    db_url: str
    bus_url: str
    media_env: dict[str, str] = field(default_factory=lambda: dict(SANDBOX_MEDIA_ENV))
    pods: list[Pod] = field(default_factory=list)

    def settings_env(self) -> dict[str, str]:
        """The settings every pod shares."""
        return {"VOIPBIN_DATABASE_URL": self.db_url, "VOIPBIN_BUS_URL": self.bus_url,
                "VOIPBIN_JWT_SECRET": JWT_SECRET, "VOIPBIN_NUMBER_POOL": NUMBER_POOL,
                "VOIPBIN_WEBHOOK_ALLOW_PRIVATE": "true", "VOIPBIN_SIP_ALLOW_PRIVATE": "true",
                "VOIPBIN_LOG_FORMAT": "json", "VOIPBIN_LOG_LEVEL": "INFO"}

    async def seed(self) -> Any:
        """The sandbox's admin, customer and number, written straight to the database (``SeedResult``)."""
        from voipbin.config import Settings
        from voipbin.runtime import Runtime

        runtime = Runtime(Settings(_env_file=None, database_url=self.db_url, bus_url="memory://",  # type: ignore[call-arg]
                                   number_pool=NUMBER_POOL, sip_enabled=False, role="api"))
        try:
            return await runtime.seed_sandbox()
        finally:
            await runtime.engine.dispose()

    async def start(self, role: str, *, pod_id: str | None = None, env: dict[str, str] | None = None,
                    timeout: float = READY_TIMEOUT_S) -> Pod:
        """Start one pod and wait until it is ready (see the module docstring)."""
        pod_id = pod_id or f"pod-{role}-{secrets.token_hex(3)}"
        values = {**self.settings_env(), "VOIPBIN_ROLE": role, "VOIPBIN_POD_ID": pod_id}
        pod = Pod(role, pod_id, self.workdir / pod_id, values)
        if role in ("api", "all"):
            pod.api_port = free_port()
            values.update(VOIPBIN_API_HOST="127.0.0.1", VOIPBIN_API_PORT=str(pod.api_port), VOIPBIN_HTTPS_PORT="0")
        if role in ("media", "all"):
            block = 20000 + 1000 * (next(_rtp_blocks) % 10)  # each media pod its own RTP range, below the ephemeral ports
            pod.sip_port, pod.rtp_ports = _free_sip_port(exclude=pod.api_port), (block, block + 998)
            values.update({"VOIPBIN_SIP_HOST": "127.0.0.1", "VOIPBIN_SIP_PORT": str(pod.sip_port),
                           "VOIPBIN_RTP_PORT_MIN": str(block), "VOIPBIN_RTP_PORT_MAX": str(block + 998),
                           **self.media_env})
        values.update(env or {})
        pod.sip_port = int(values.get("VOIPBIN_SIP_PORT", pod.sip_port))
        self.pods.append(pod)
        pod.spawn()
        await self.wait_ready(pod, timeout)
        return pod

    async def restart(self, pod: Pod, timeout: float = READY_TIMEOUT_S) -> Pod:
        """Start ``pod`` again (after ``kill``/``stop``) with its pod_id, ports and directory."""
        pod.stop()
        pod.spawn()
        await self.wait_ready(pod, timeout)
        return pod

    async def wait_ready(self, pod: Pod, timeout: float = READY_TIMEOUT_S) -> None:
        """Until the pod's heartbeat row is written after its start (and an api pod answers HTTP)."""
        started = time.time() - 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pod.proc is not None and pod.proc.poll() is not None:
                raise RuntimeError(f"{pod.pod_id} exited with {pod.proc.returncode}:\n{pod.log_tail()}")
            row = await self.pod_row(pod.pod_id)
            beat = row["tm_heartbeat"].replace(tzinfo=UTC).timestamp() if row is not None else 0.0  # naive UTC
            if beat >= started and await _answers(pod):
                return
            await asyncio.sleep(0.2)  # readiness poll of a child process; there is no event to await
        raise TimeoutError(f"{pod.pod_id} not ready within {timeout}s:\n{pod.log_tail()}")

    async def pod_row(self, pod_id: str) -> dict[str, Any] | None:
        """The pod's ``pods`` row (role, sip_host, sip_port, load, tm_heartbeat), None when absent."""
        conn = await asyncpg.connect(self.db_url.replace("postgresql+asyncpg://", "postgresql://", 1))
        try:
            row = await conn.fetchrow("SELECT * FROM pods WHERE id = $1", pod_id)
        finally:
            await conn.close()
        return dict(row) if row is not None else None

    async def stop_all(self) -> None:
        """SIGTERM every pod still running (each drains), in parallel."""
        await asyncio.gather(*(asyncio.to_thread(pod.stop) for pod in self.pods))


class Seen:
    """Every event published on the bus (any pod), awaited by condition."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._changed = asyncio.Condition()

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def of(self, event_type: str, resource_id: str) -> list[Event]:
        return [e for e in self.events if e.event_type == event_type and e.resource_id == resource_id]

    async def until(self, check: Callable[[], bool], timeout: float) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(check)


def _free_sip_port(exclude: int) -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (SIP binds both)."""
    while True:
        port = free_port()
        if port == exclude:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


async def _answers(pod: Pod) -> bool:
    if not pod.api_port:
        return True
    try:
        async with httpx.AsyncClient(timeout=1) as client:
            return (await client.get(f"{pod.base_url}/openapi.json")).status_code == 200
    except httpx.TransportError:
        return False
