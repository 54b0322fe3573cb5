"""An in-process sandbox for the e2e tests: what ``voipbin sandbox`` runs, on free ports.

Offline speech providers, the virtual PSTN (tel destinations reach a virtual phone over real SIP
on loopback), webhooks and sip: destinations allowed to loopback, a real HTTP server; the speech
engines are warmed up first, as the sandbox does at start.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import uvicorn

from tests_support.net import ADMIN_PASSWORD, ADMIN_USERNAME, free_port
from voipbin.config import Settings


@pytest.fixture
def sandbox_settings(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("VOIPBIN_SPEECH_OFFLINE_FALLBACK", "true")  # read by the speech registries
    for key in ("VOIPBIN_ELEVENLABS_API_KEY", "VOIPBIN_GCP_API_KEY", "VOIPBIN_AWS_ACCESS_KEY_ID",
                "VOIPBIN_TTS_DEFAULT_PROVIDER"):
        monkeypatch.delenv(key, raising=False)
    return Settings(database_url=sqlite_url, webhook_allow_private=True, sip_allow_private=True,  # type: ignore[call-arg]
                    sip_port=0, sandbox_virtual_pstn=True, _env_file=None)


@pytest_asyncio.fixture
async def sandbox(sandbox_settings: Settings) -> AsyncIterator[Any]:
    """The running sandbox: ``runtime`` attributes plus ``base_url`` (real HTTP) and ``token``."""
    import httpx

    from voipbin.api.app import create_app
    from voipbin.runtime import Runtime

    rt = Runtime(sandbox_settings)
    await rt.start()
    rt.seed = await rt.seed_sandbox()  # type: ignore[attr-defined]
    await rt.warm_up()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(rt), host="127.0.0.1", port=port, log_config=None,
                                           lifespan="off"))
    task = asyncio.get_running_loop().create_task(server.serve())
    while not server.started:
        assert not task.done(), task
        await asyncio.sleep(0.02)  # uvicorn has no start event
    rt.base_url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    async with httpx.AsyncClient(base_url=rt.base_url) as c:  # type: ignore[attr-defined]
        r = await c.post("/auth/login", json={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD})
        rt.token = r.json()["token"]  # type: ignore[attr-defined]
    try:
        yield rt
    finally:
        server.should_exit = True
        await task
        await rt.stop()


@pytest_asyncio.fixture
async def api(sandbox: Any) -> AsyncIterator[Any]:
    """An httpx client on the sandbox's HTTP port, authenticated with ``?token=``."""
    import httpx

    async with httpx.AsyncClient(base_url=sandbox.base_url, params={"token": sandbox.token}, timeout=30) as c:
        yield c


SEEDS = Path(__file__).parent / "seeds"
