"""deploy/kamailio/render.py: the SIP edge's config from its template, checked by Kamailio itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kamailio_support import RENDER, render_module


def test_rendered_config_is_accepted_by_kamailio_and_lists_every_pod(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, str(RENDER), "--listen", "127.0.0.1:15999", "--pod", "127.0.0.1:5071",
                          "--pod", "10.0.0.2:5060", "--advertise", "203.0.113.10:5060", "--out", str(tmp_path)],
                         capture_output=True, text=True, check=True)
    config = Path(out.stdout.strip())
    text = config.read_text()
    assert "{{" not in text and "listen=udp:127.0.0.1:15999 advertise 203.0.113.10:5060" in text
    assert (tmp_path / "dispatcher.list").read_text() == "1 sip:127.0.0.1:5071 0 0\n1 sip:10.0.0.2:5060 0 0\n"
    check = subprocess.run(["kamailio", "-c", "-f", str(config)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


@pytest.mark.parametrize("args", [["--pod", "pod-a:5071"], ["--pod", "127.0.0.1:99999"], []])
def test_bad_arguments_exit_2_naming_the_value(tmp_path: Path, args: list[str]) -> None:
    done = subprocess.run([sys.executable, str(RENDER), "--out", str(tmp_path), *args], capture_output=True, text=True)
    assert done.returncode == 2
    assert (args[-1] if args else "--pod") in done.stderr


def test_a_placeholder_without_value_is_named() -> None:
    with pytest.raises(KeyError, match="LISTEN_HOST"):
        render_module().render("listen={{LISTEN_HOST}}", {})
