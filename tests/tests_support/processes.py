"""Run ``voipbin`` as a real subprocess for tests: :func:`spawn_voipbin` and :func:`stop_process` (any
``voipbin`` command, its output appended to a log file; the cluster tests' pods use them too), and
:class:`SandboxProcess` (a sandbox on a free port and a temporary database)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def spawn_voipbin(args: list[str], *, cwd: Path, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start ``python -m voipbin.cli ARGS`` in ``cwd`` with ``env`` added to this environment, stdout and
    stderr appended to ``log_path``."""
    with log_path.open("ab") as log:
        return subprocess.Popen([sys.executable, "-m", "voipbin.cli", *args], cwd=cwd, env={**os.environ, **env},
                                stdout=log, stderr=subprocess.STDOUT)


def stop_process(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
    """Send ``sig`` (SIGKILL to simulate a crash) and wait up to ``timeout`` s, then SIGKILL; the exit code
    (the earlier one when it had exited, 0 when it never started)."""
    if proc is None or proc.poll() is not None:
        return proc.returncode if proc else 0
    proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


@dataclass
class SandboxProcess:
    """A ``voipbin sandbox`` child; ``start()`` returns once the API answers."""

    workdir: Path
    api_port: int
    sip_port: int = 0
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "sandbox.log"

    def start(self, timeout: float = 30.0) -> SandboxProcess:
        env = {"VOIPBIN_DATABASE_URL": f"sqlite+aiosqlite:///{self.workdir / 'voipbin.db'}",
               "VOIPBIN_SIP_PORT": str(self.sip_port), "VOIPBIN_RTP_PORT_MIN": "40000",
               "VOIPBIN_RTP_PORT_MAX": "49999", **self.env}
        self.proc = spawn_voipbin(["sandbox", "--host", "127.0.0.1", "--port", str(self.api_port)],
                                  cwd=self.workdir, env=env, log_path=self.log_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sandbox exited with {self.proc.returncode}:\n{self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.base_url}/openapi.json", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)  # readiness poll of a child process; there is no event to await
        self.stop()
        raise TimeoutError(f"sandbox did not answer within {timeout}s:\n{self.log_path.read_text()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Send ``sig`` (SIGKILL to simulate a crash) and wait; returns the exit code."""
        return stop_process(self.proc, sig, timeout)

    def login(self, username: str = "admin@localhost", password: str = "admin@localhost") -> str:
        r = httpx.post(f"{self.base_url}/auth/login", json={"username": username, "password": password})
        r.raise_for_status()
        return str(r.json()["token"])
