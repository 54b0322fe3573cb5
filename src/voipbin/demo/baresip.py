"""Drive a real baresip softphone (Debian ``baresip-core`` 1.0) headless, for the demo and the tests.

baresip runs with files for audio: ``audio_file`` (a WAV, 8 kHz mono PCM16) is what the phone
says; the ``sndfile`` module records what it hears as ``dump-<time>-dec.wav`` in ``record_dir``.
It is controlled over its ``ctrl_tcp`` module: netstring-framed JSON commands
(``{"command": "hangup"}``) and events (``{"event": true, "type": "CALL_ESTABLISHED", ...}``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MODULES = ("g711.so", "aufile.so", "sndfile.so", "account.so", "menu.so", "ctrl_tcp.so")


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def encode_netstring(payload: bytes) -> bytes:
    """``<len>:<payload>,`` (D. J. Bernstein's netstrings, as ctrl_tcp frames its JSON)."""
    return str(len(payload)).encode() + b":" + payload + b","


class BaresipError(RuntimeError):
    pass


@dataclass
class BaresipPhone:
    """One baresip process with one account.

    ``user``/``domain``/``password``: the SIP account (``domain`` is the registrar domain,
    ``<customer_id>.registrar.<sip_domain>``); ``proxy``: where to send (host, port);
    ``audio_file``: what the phone says (it must outlast the call: pad it with silence);
    ``auto_answer``: answer incoming calls at once.
    """

    workdir: Path
    user: str
    domain: str
    password: str
    proxy: tuple[str, int]
    audio_file: Path
    auto_answer: bool = True
    regint: int = 300
    binary: str = "baresip"
    events: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    log: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sip_port = _free_port(socket.SOCK_DGRAM)
        self.ctrl_port = _free_port(socket.SOCK_STREAM)
        self.record_dir = self.workdir / "recordings"
        self._proc: asyncio.subprocess.Process | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._responses: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    def write_config(self) -> Path:
        conf = self.workdir / "baresip"
        conf.mkdir(parents=True, exist_ok=True)
        self.record_dir.mkdir(parents=True, exist_ok=True)
        lines = [
            "module_path /usr/lib/baresip/modules",
            f"sip_listen 127.0.0.1:{self.sip_port}",
            *[f"module {m}" for m in MODULES],
            f"snd_path {self.record_dir}",
            f"audio_source aufile,{self.audio_file}",
            "audio_alert aufile,/dev/null",
            "audio_player aufile,/dev/null",
            "rtp_ports 30000-39999",
            f"ctrl_tcp_listen 127.0.0.1:{self.ctrl_port}",
        ]
        (conf / "config").write_text("\n".join(lines) + "\n")
        # the account is added over the control port once we listen to events (see start())
        (conf / "accounts").write_text("")
        (conf / "contacts").write_text("")
        return conf

    @property
    def account_line(self) -> str:
        answer = ";answermode=auto" if self.auto_answer else ";answermode=manual"
        host, port = self.proxy
        return (f"<sip:{self.user}@{self.domain};transport=udp>;auth_pass={self.password};"
                f'outbound="sip:{host}:{port}";regint={self.regint}{answer}')

    async def start(self, timeout: float = 10.0) -> None:
        """Start baresip, connect to its control port and add the account (which registers).

        Raises BaresipError when baresip is missing or does not come up."""
        if shutil.which(self.binary) is None:
            raise BaresipError("baresip is not installed (Debian package baresip-core)")
        conf = self.write_config()
        self._proc = await asyncio.create_subprocess_exec(
            self.binary, "-f", str(conf), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        self._tasks.append(asyncio.get_running_loop().create_task(self._read_log()))
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                reader, self._writer = await asyncio.open_connection("127.0.0.1", self.ctrl_port)
                break
            except OSError:
                if self._proc.returncode is not None or asyncio.get_running_loop().time() > deadline:
                    raise BaresipError("baresip did not open its control port:\n" + "".join(self.log)) from None
                await asyncio.sleep(0.05)  # the child binds its control socket; nothing to await
        self._tasks.append(asyncio.get_running_loop().create_task(self._read_ctrl(reader)))
        await self.command("uanew", self.account_line)  # registers now, with our event reader in place

    async def _read_log(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        async for line in self._proc.stdout:
            self.log.append(line.decode(errors="replace"))

    async def _read_ctrl(self, reader: asyncio.StreamReader) -> None:
        while True:
            try:
                length = int((await reader.readuntil(b":"))[:-1])
                payload = await reader.readexactly(length + 1)
            except (asyncio.IncompleteReadError, ValueError, ConnectionError):
                return
            message = json.loads(payload[:-1])
            if message.get("event"):
                self.events.put_nowait(message)
            elif message.get("response"):
                self._responses.put_nowait(message)

    async def wait_event(self, event_type: str, timeout: float = 15.0) -> dict[str, Any]:
        """The next control event of ``event_type`` (``REGISTER_OK``, ``CALL_ESTABLISHED``, ``CALL_CLOSED``...)."""
        async def find() -> dict[str, Any]:
            while True:
                event = await self.events.get()
                if event.get("type") == event_type:
                    return event
        try:
            return await asyncio.wait_for(find(), timeout)
        except TimeoutError:
            raise BaresipError(f"no {event_type} within {timeout}s; log:\n" + "".join(self.log[-40:])) from None

    async def command(self, command: str, params: str = "", timeout: float = 5.0) -> dict[str, Any]:
        """Run a baresip command (``hangup``, ``dial``, ``accept``...) and return its response."""
        if self._writer is None:
            raise BaresipError("not started")
        body = json.dumps({"command": command, "params": params, "token": command}).encode()
        self._writer.write(encode_netstring(body))
        await self._writer.drain()
        return await asyncio.wait_for(self._responses.get(), timeout)

    async def hangup(self) -> None:
        await self.command("hangup")

    def recordings(self, kind: str = "dec") -> list[Path]:
        """Recorded WAVs: ``dec`` = what the phone heard, ``enc`` = what it sent; oldest first."""
        return sorted(self.record_dir.glob(f"dump-*-{kind}.wav"))

    async def stop(self, timeout: float = 5.0) -> None:
        """Quit (baresip unregisters on the way out), then make sure the process is gone."""
        if self._proc is None:
            return
        if self._proc.returncode is None and self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.write(encode_netstring(json.dumps({"command": "quit"}).encode()))
                await self._writer.drain()
        try:
            await asyncio.wait_for(self._proc.wait(), timeout)
        except TimeoutError:
            self._proc.kill()
            await self._proc.wait()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._writer is not None:
            self._writer.close()
