"""`voipbin demo` as a newcomer runs it: a subprocess that must exit 0 with its summary."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.sip_peer, pytest.mark.slow]


def test_demo_runs_the_real_time_voice_scenario(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "voipbin.cli", "demo", "--workdir", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "demo completed: every step happened" in out
    assert "softphone registered" in out
    for status in ("call_created", "call_progressing", "call_hangup"):
        assert status in out, status
    assert "[TRANSCRIBE out]" in out and "[TRANSCRIBE in]" in out
    assert "/say -> first speech RTP packet" in out and "end of speech -> transcript_created" in out
    assert list((tmp_path / "phone" / "recordings").glob("dump-*-dec.wav")), "the softphone recorded nothing"
