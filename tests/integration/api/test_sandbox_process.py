"""``voipbin sandbox`` as a user runs it: a real process, real HTTP, state kept across restarts."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests_support.net import free_port
from tests_support.processes import SandboxProcess


def test_sandbox_serves_the_seed_003_flow_and_keeps_state(tmp_path: Path, spec) -> None:  # type: ignore[no-untyped-def]
    sandbox = SandboxProcess(tmp_path, free_port()).start()
    try:
        token = sandbox.login()
        q = {"token": token}
        me = httpx.get(f"{sandbox.base_url}/v1.0/customer", params=q).json()
        numbers = httpx.get(f"{sandbox.base_url}/v1.0/numbers", params=q).json()
        assert len(numbers["result"]) == 1 and numbers["result"][0]["number"].startswith("+")
        r = httpx.post(f"{sandbox.base_url}/v1.0/extensions", params=q, json={
            "name": "quickstart-phone", "detail": "Quickstart softphone extension",
            "extension": "quickstart1", "password": "your-secure-password-here"})
        assert r.status_code == 200
        spec.validate("RegistrarManagerExtension", r.json())
        banner = sandbox.log_path.read_text()
        assert "admin@localhost" in banner and f"{me['id']}.registrar.voipbin.test" in banner
    finally:
        # uvicorn shuts down gracefully, then re-raises SIGTERM: -15 is its clean exit
        assert sandbox.stop() in (0, -15)
    again = SandboxProcess(tmp_path, free_port()).start()
    try:
        token = again.login()
        exts = httpx.get(f"{again.base_url}/v1.0/extensions", params={"token": token}).json()["result"]
        assert [e["name"] for e in exts] == ["quickstart-phone"]
        nums = httpx.get(f"{again.base_url}/v1.0/numbers", params={"token": token}).json()["result"]
        assert len(nums) == 1, "seeding twice must not add a second number"
    finally:
        again.stop()
