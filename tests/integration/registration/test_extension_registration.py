"""A real baresip registers an extension created over the API; the API shows the binding."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from voipbin.demo.baresip import BaresipPhone
from voipbin.events.bus import event_queue

pytestmark = pytest.mark.sip_peer


def _silence(path: Path, seconds: int = 30) -> Path:
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(path), "trim", "0", str(seconds)],
                   check=True)
    return path


async def _extension(client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    r = await client.post("/v1.0/extensions", params={"token": token}, json={
        "name": "quickstart-phone", "detail": "Quickstart softphone extension",
        "extension": "quickstart1", "password": "your-secure-password-here"})
    assert r.status_code == 200
    return r.json()


async def test_baresip_registers_and_the_api_shows_it(client: httpx.AsyncClient, admin_token: str, runtime: Any,
                                                       tmp_path: Path, spec: Any) -> None:
    ext = await _extension(client, admin_token)
    queue, sub = await event_queue(runtime.bus, f"customer_id:{ext['customer_id']}:extension:{ext['id']}")
    phone = BaresipPhone(tmp_path, user="quickstart1", domain=f"{ext['customer_id']}.registrar.voipbin.test",
                         password="your-secure-password-here", proxy=("127.0.0.1", runtime.sip.port),
                         audio_file=_silence(tmp_path / "silence.wav"))
    await phone.start()
    try:
        await phone.wait_event("REGISTER_OK")
        event = await asyncio.wait_for(queue.get(), 15)
        assert event.event_type == "extension_updated" and event.data["registered"] is True
        got = (await client.get(f"/v1.0/extensions/{ext['id']}", params={"token": admin_token})).json()
        spec.validate("RegistrarManagerExtension", got)
        assert got["registered"] is True and len(got["contacts"]) == 1
        contact = got["contacts"][0]
        assert contact["uri"].startswith("sip:quickstart1") and "@127.0.0.1:" in contact["uri"]
        assert contact["user_agent"].startswith("baresip") and 0 < contact["expires"] <= 300
    finally:
        await phone.stop()
    event = await asyncio.wait_for(queue.get(), 15)  # baresip unregisters when it quits
    assert event.data["registered"] is False
    got = (await client.get(f"/v1.0/extensions/{ext['id']}", params={"token": admin_token})).json()
    assert got["registered"] is False and got["contacts"] == []
    await sub.unsubscribe()


async def test_wrong_password_does_not_register(client: httpx.AsyncClient, admin_token: str, runtime: Any,
                                                tmp_path: Path) -> None:
    ext = await _extension(client, admin_token)
    phone = BaresipPhone(tmp_path, user="quickstart1", domain=f"{ext['customer_id']}.registrar.voipbin.test",
                         password="wrong", proxy=("127.0.0.1", runtime.sip.port),
                         audio_file=_silence(tmp_path / "silence.wav"))
    await phone.start()
    try:
        failed = await phone.wait_event("REGISTER_FAIL")
        assert "403" in failed.get("param", "") or "401" in failed.get("param", ""), failed
    finally:
        await phone.stop()
    got = (await client.get(f"/v1.0/extensions/{ext['id']}", params={"token": admin_token})).json()
    assert got["registered"] is False
