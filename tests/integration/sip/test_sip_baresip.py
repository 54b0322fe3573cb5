"""A real baresip (Debian baresip 1.0) registers at our registrar over UDP."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from sip_peer_env import AOR, DOMAIN, PASSWORD, USER, Registry

pytestmark = pytest.mark.sip_peer

MODULES = ("g711.so", "aufile.so", "account.so", "menu.so")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def baresip_config(tmp_path: Path, registrar_port: int, password: str) -> Path:
    conf = tmp_path / "baresip"
    conf.mkdir()
    wav = tmp_path / "silence.wav"
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(wav), "trim", "0", "2"],
                   check=True)
    lines = ["module_path /usr/lib/baresip/modules", f"sip_listen 127.0.0.1:{free_udp_port()}",
             *[f"module {m}" for m in MODULES], f"audio_source aufile,{wav}",
             "audio_alert aufile,/dev/null", "rtp_ports 30000-31000"]
    (conf / "config").write_text("\n".join(lines) + "\n")
    (conf / "accounts").write_text(
        f'<sip:{USER}@{DOMAIN};transport=udp>;auth_pass={password};'
        f'outbound="sip:127.0.0.1:{registrar_port}";regint=120\n')
    return conf


async def start_baresip(conf: Path, seconds: int) -> asyncio.subprocess.Process:
    assert shutil.which("baresip"), "baresip is required (apt-get install baresip)"
    return await asyncio.create_subprocess_exec(
        "baresip", "-f", str(conf), "-t", str(seconds), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)


async def read_until(proc: asyncio.subprocess.Process, needle: str, timeout: float = 10.0) -> str:
    assert proc.stdout is not None
    seen = []

    async def scan() -> str:
        while True:
            line = await proc.stdout.readline()  # type: ignore[union-attr]
            if not line:
                raise AssertionError("baresip exited before '%s':\n%s" % (needle, "".join(seen)))
            text = line.decode(errors="replace")
            seen.append(text)
            if needle in text:
                return text

    return await asyncio.wait_for(scan(), timeout)


async def test_baresip_registers_then_unregisters(registry: Registry, tmp_path: Path) -> None:
    proc = await start_baresip(baresip_config(tmp_path, registry.port, PASSWORD), seconds=3)
    try:
        created = await registry.next_change()
        assert created.event == "created"
        binding = created.binding
        assert binding.aor == AOR and binding.owner_id == "ext-100" and binding.transport == "UDP"
        assert (binding.user_agent or "").startswith("baresip")
        assert [b.contact for b in await registry.location.lookup(AOR)] == [binding.contact]
        line = await read_until(proc, "200 OK")
        assert "1 binding" in line
        removed = await registry.next_change()  # baresip unregisters when it quits (-t 3)
        assert removed.event == "removed" and removed.binding.contact == binding.contact
        assert await registry.location.lookup(AOR) == []
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def test_baresip_wrong_password_is_rejected(registry: Registry, tmp_path: Path) -> None:
    proc = await start_baresip(baresip_config(tmp_path, registry.port, "wrong-password"), seconds=3)
    try:
        # libre retries each fresh challenge; the per-source failure limiter ends it with 403.
        line = await read_until(proc, "403 Too Many Failed Authentications")
        assert "reg:" in line
        assert registry.registrar.stats["auth_failed"] >= 1
        assert registry.registrar.stats["registered"] == 0
        assert await registry.location.lookup(AOR) == []
        assert registry.changes.empty()
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
