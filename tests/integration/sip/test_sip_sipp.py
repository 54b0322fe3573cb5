"""sipp (Debian sip-tester 3.6) runs REGISTER scenarios with digest auth over UDP and TCP."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from sip_peer_env import AOR, DOMAIN, PASSWORD, USER, Registry

pytestmark = pytest.mark.sip_peer

SCENARIOS = Path(__file__).parent / "scenarios"


async def run_sipp(scenario: str, port: int, transport: str, password: str, calls: int,
                   cwd: Path, rate: int = 10) -> tuple[int, str]:
    assert shutil.which("sipp"), "sipp is required (apt-get install sip-tester)"
    proc = await asyncio.create_subprocess_exec(
        "sipp", "-sf", str(SCENARIOS / scenario), "-key", "domain", DOMAIN, "-s", USER,
        "-au", USER, "-ap", password, "-t", {"UDP": "u1", "TCP": "t1"}[transport],
        "-i", "127.0.0.1", "-m", str(calls), "-r", str(rate), "-nostdin", "-timeout", "20",
        "-timeout_error", f"127.0.0.1:{port}", cwd=str(cwd), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    return proc.returncode or 0, out.decode(errors="replace")


@pytest.mark.parametrize("transport", ["UDP", "TCP"])
async def test_sipp_register_and_unregister_with_digest(registry: Registry, tmp_path: Path,
                                                       transport: str) -> None:
    rc, out = await run_sipp("register_digest.xml", registry.port, transport, PASSWORD, 5, tmp_path)
    assert rc == 0, out[-3000:]
    events = []
    while not registry.changes.empty():
        events.append(registry.changes.get_nowait())
    assert [e.event for e in events].count("created") >= 1
    assert all(e.binding.transport == transport for e in events)
    assert [e.event for e in events][-1] == "removed"
    assert registry.registrar.stats["registered"] == 10  # 5 registrations + 5 unregistrations
    assert await registry.location.lookup(AOR) == []


async def test_sipp_wrong_password_gets_401_again(registry: Registry, tmp_path: Path) -> None:
    rc, out = await run_sipp("register_wrong_password.xml", registry.port, "UDP", "bad", 1, tmp_path)
    assert rc == 0, out[-3000:]
    assert registry.registrar.stats["auth_failed"] == 1
    assert await registry.location.lookup(AOR) == []
