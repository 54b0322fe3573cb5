"""Kamailio as the SIP edge in front of a test cluster's media pods (issue 19).

    edge = Kamailio(tmp_path / "kamailio", pods=[("127.0.0.1", m1.sip_port), ("127.0.0.1", m2.sip_port)])
    await edge.start()                  # config from deploy/kamailio/kamailio.cfg.tmpl, ready when it answers
    edge.port                           # the one SIP address of the phones: 127.0.0.1:edge.port
    await edge.wait_pods({m1_uri: True, m2_uri: False})   # the dispatcher's view (OPTIONS probing)
    edge.set_pods([...])                # a new dispatcher list, read again by the running Kamailio
    edge.stop()

The config is written by ``deploy/kamailio/render.py`` (the script ``scripts/cluster.sh`` uses) and
Kamailio runs in the foreground (``-DD -E``), its log in ``<workdir>/kamailio.log``. The dispatcher's
state is read over Kamailio's control socket with ``kamcmd dispatcher.list``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from tests_support.net import free_port

REPO = Path(__file__).resolve().parents[3]
RENDER = REPO / "deploy" / "kamailio" / "render.py"


def render_module() -> ModuleType:
    """deploy/kamailio/render.py, imported by path (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("kamailio_render", RENDER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pod_uri(host: str, port: int) -> str:
    """A media pod's dispatcher entry, as ``kamcmd dispatcher.list`` names it."""
    return f"sip:{host}:{port}"


@dataclass
class Kamailio:
    """One Kamailio process; ``pods``: the media pods' (host, port) in dispatcher set 1."""

    workdir: Path
    pods: list[tuple[str, int]]
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "kamailio.log"

    @property
    def ctl(self) -> str:
        return f"unix:{(self.workdir / 'kamailio_ctl').resolve()}"

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    async def start(self, timeout: float = 15.0) -> Kamailio:
        """Write the config, start Kamailio and wait until it answers OPTIONS (it answers for itself)."""
        if shutil.which("kamailio") is None:
            raise RuntimeError("kamailio is not installed (Debian package kamailio; make install)")
        config = render_module().write_config(self.workdir, listen=(self.host, self.port), pods=self.pods,
                                              log_level=2)  # L_INFO: where each new request was dispatched
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(["kamailio", "-f", str(config), "-DD", "-E", "-m", "64", "-M", "16"],
                                     stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kamailio exited with {self.proc.returncode}:\n{self.log_tail()}")
            if await asyncio.to_thread(sip_options, self.host, self.port) == 200:
                return self
            await asyncio.sleep(0.1)  # readiness poll of a child process; there is no event to await
        raise TimeoutError(f"kamailio did not answer within {timeout}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def set_pods(self, pods: list[tuple[str, int]]) -> None:
        """Rewrite the dispatcher list (``render.write_dispatcher``) and make Kamailio read it again
        (``kamcmd dispatcher.reload``, as ``scripts/cluster.sh reload`` does)."""
        render_module().write_dispatcher(self.workdir, pods)
        done = subprocess.run(["kamcmd", "-s", self.ctl, "dispatcher.reload"], capture_output=True, text=True,
                              check=True, timeout=5)
        if "error" in done.stdout:  # kamcmd exits 0 with the RPC's error
            raise RuntimeError(f"dispatcher.reload: {done.stdout.strip()}")
        self.pods = pods

    def dispatcher_state(self) -> dict[str, str]:
        """{pod uri: flags} from ``kamcmd dispatcher.list``: ``AP`` active and probed, ``IP``/``TP``
        inactive or trying (the pod did not answer its probes)."""
        out = subprocess.run(["kamcmd", "-s", self.ctl, "dispatcher.list"], capture_output=True, text=True,
                             check=True, timeout=5).stdout
        return dict(re.findall(r"URI:\s*(\S+)\s+FLAGS:\s*(\S+)", out))

    async def wait_pods(self, active: dict[str, bool], timeout: float = 15.0) -> float:
        """Wait until each pod uri's dispatcher state is active (True) or not (False); returns the
        seconds it took. Raises TimeoutError with the last state seen."""
        start = time.monotonic()
        state: dict[str, str] = {}
        while time.monotonic() - start < timeout:
            state = await asyncio.to_thread(self.dispatcher_state)
            if all(state.get(uri, "").startswith("A") == want for uri, want in active.items()):
                return time.monotonic() - start
            await asyncio.sleep(0.2)  # the dispatcher's probing runs inside Kamailio; polled over its RPC
        raise TimeoutError(f"dispatcher state {state}, wanted {active}")


def sip_options(host: str, port: int, timeout: float = 0.5) -> int | None:
    """Send one OPTIONS to ``host:port`` from a fresh UDP socket; the response's status, or None."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        sock.settimeout(timeout)
        me = sock.getsockname()[1]
        tag = time.time_ns()
        sock.sendto((f"OPTIONS sip:{host}:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {host}:{me};branch=z9hG4bK{tag}\r\n"
                     f"Max-Forwards: 70\r\nFrom: <sip:probe@{host}>;tag={tag}\r\nTo: <sip:{host}:{port}>\r\n"
                     f"Call-ID: probe-{tag}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode(), (host, port))
        try:
            first = sock.recv(4096).split(b"\r\n", 1)[0].split()
        except OSError:
            return None
    return int(first[1]) if len(first) > 1 and first[1].isdigit() else None
