"""The seeds' own example programs, run as written against a sandbox (issue 12).

The programs are fixtures in ``seeds/`` (copied from ``../shared/seeds/``; `test_fixtures_are_the_docs`
proves it); each test changes only what the docs tell a user to change: the base URL and the
credentials. The far end of every call is the sandbox's virtual phone (a ``tel`` destination),
which speaks LibriVox recordings the way a person on the phone would.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests_support.net import ADMIN_PASSWORD, ADMIN_USERNAME, free_port
from tests_support.processes import SandboxProcess

pytestmark = [pytest.mark.sip_peer, pytest.mark.slow]

SEEDS = Path(__file__).parent / "seeds"
DOCS = Path(__file__).resolve().parents[3] / "shared" / "seeds"
NIL = "00000000-0000-0000-0000-000000000000"
PHONE = "+15559876543"  # seed 002's destination: the sandbox's virtual phone answers it
AGENT_WORDS = ("understand", "let me help", "how can i help")  # what seed 002's agent says


def _doc(prefix: str) -> list[str]:
    return [line.strip() for line in next(DOCS.glob(f"{prefix}_*.txt")).read_text().splitlines()]


def _code_lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def test_fixtures_are_the_docs() -> None:
    """The fixtures are the docs' code line for line (the docs' text lost only the indentation)."""
    for fixture, doc in (("seed_002_agent.py", "002"), ("seed_003_websocket.py", "003")):
        code, text = _code_lines(SEEDS / fixture), _doc(doc)
        start = max(i for i, line in enumerate(text) if line == code[0])  # the last (complete) example
        assert text[start:start + len(code)] == code, fixture
    text = _doc("003")
    blocks = [block.splitlines() for block in _commands()]
    assert len(blocks) == 10
    for lines in blocks:
        starts = [i for i, line in enumerate(text) if line == lines[0]]
        assert any(text[i:i + len(lines)] == lines for i in starts), lines[0]


def _commands() -> list[str]:
    """The curl commands of ``seed_003_quickstart.sh``, one string each (lines joined by newlines)."""
    blocks = (SEEDS / "seed_003_quickstart.sh").read_text().split("\n\n")
    return ["\n".join(line for line in b.splitlines() if not line.startswith("#")) for b in blocks
            if "$ curl" in b]


class Lines:
    """The stdout lines of a child process, awaited one predicate at a time."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.seen: list[str] = []
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            self.seen.append(line)
            self._queue.put_nowait(line)

    async def next(self, predicate: Any, timeout: float = 40) -> str:
        async def find() -> str:
            while True:
                line = await self._queue.get()
                if predicate(line):
                    return line
        try:
            return await asyncio.wait_for(find(), timeout)
        except TimeoutError:
            raise AssertionError(f"no matching line; the script printed {self.seen}") from None

    async def close(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()
        self._task.cancel()


async def test_seed_000_with_the_seed_003_websocket_script(sandbox: Any, api: Any, tmp_path: Path) -> None:
    customer_id = (await api.get("/v1.0/customer")).json()["id"]
    script = (SEEDS / "seed_003_websocket.py").read_text()
    for old, new in (('"<your-token>"', json.dumps(sandbox.token)),
                     ('"<your-customer-id>"', json.dumps(customer_id)),
                     ("wss://api.voipbin.net", sandbox.base_url.replace("http://", "ws://", 1))):
        assert script.count(old) == 1, old
        script = script.replace(old, new)
    (tmp_path / "events.py").write_text(script)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-u", str(tmp_path / "events.py"),
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out = Lines(proc)
    try:
        await out.next(lambda line: line == "Subscribed to call and transcribe events. Waiting...", 20)
        # seed 000's request; the destination is a phone number (the virtual phone) instead of Linphone
        body = {"source": {"type": "tel", "target": sandbox.seed.number},
                "destinations": [{"type": "tel", "target": PHONE}],
                "actions": [
                    {"type": "transcribe_start", "option": {"language": "en-US"}},
                    {"type": "talk", "option": {
                        "text": "Hello. This is the VoIPBIN real-time voice interaction test. You can speak now and "
                                "your speech will be transcribed. The call will stay open for you to test the "
                                "Speaking API.", "gender": "female", "language": "en-US"}},
                    {"type": "sleep", "option": {"duration": 600000}}]}
        r = await api.post("/v1.0/calls", json=body)
        assert r.status_code == 200, r.text
        call_id = r.json()["calls"][0]["id"]
        await out.next(lambda line: line == "[EVENT] call_progressing")
        await out.next(lambda line: line.startswith("[TRANSCRIBE out]")  # the talk greeting, as ASR heard it
                       and any(w in line.lower() for w in ("interaction", "speak now", "transcribed")))
        heard = await out.next(lambda line: line.startswith("[TRANSCRIBE in]") and len(line) > 20)
        assert not any(w in heard.lower() for w in ("voipbin", "interaction", "speaking api")), heard

        # seed 000's speaking stream (provider elevenlabs, no key: the local engine speaks for it)
        r = await api.post("/v1.0/speakings", json={"reference_type": "call", "reference_id": call_id,
                                                    "language": "en-US", "provider": "elevenlabs",
                                                    "direction": "out"})
        assert r.status_code == 201 and r.json()["provider"] == "elevenlabs", r.text
        speaking_id = r.json()["id"]
        for _ in range(100):
            if (await api.get(f"/v1.0/speakings/{speaking_id}")).json()["status"] == "active":
                break
            await asyncio.sleep(0.1)
        r = await api.post(f"/v1.0/speakings/{speaking_id}/say", json={
            "text": "Hello, how are you today? This is VoIPBIN speaking to you in real time using the ElevenLabs "
                    "text-to-speech engine."})
        assert r.status_code == 200, r.text
        await out.next(lambda line: line.startswith("[TRANSCRIBE out]") and "real time" in line.lower())
        assert (await api.delete(f"/v1.0/calls/{call_id}")).status_code == 200
        await out.next(lambda line: line == "[EVENT] call_hangup", 20)
    finally:
        await out.close()


def test_seed_003_curl_sequence_over_https(tmp_path: Path) -> None:
    """Seed 003's curl commands against ``voipbin sandbox`` at https://api.voipbin.test:<port> with -k."""
    https_port = free_port()
    sandbox = SandboxProcess(tmp_path, free_port(), env={"VOIPBIN_HTTPS_PORT": str(https_port)}).start()
    base = f"https://api.voipbin.test:{https_port}"
    values = {"your-voipbin-username": ADMIN_USERNAME, "your-voipbin-password": ADMIN_PASSWORD,
              "https://your-server.com/voipbin/events": f"http://127.0.0.1:{free_port()}/voipbin/events"}

    def run(command: str) -> tuple[int, Any]:
        text = command.removeprefix("$ ").replace("https://api.voipbin.net", base)
        text = text.replace("https://api.voipbin.test:8443", base).replace("curl -k ", "curl ", 1)
        for key, value in values.items():
            text = text.replace(f"<{key}>", value).replace(key, value)
        assert "<" not in re.sub(r"'\{.*\}'", "", text, flags=re.S), text  # every placeholder filled
        text = text.replace("curl ", f"curl -sS -k --resolve api.voipbin.test:{https_port}:127.0.0.1 "
                                     f"-w '\\n%{{http_code}}' ", 1)
        done = subprocess.run(["bash", "-c", text], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, (text, done.stderr)
        body, _, status = done.stdout.rpartition("\n")
        return int(status), json.loads(body) if body.strip() else None

    try:
        commands = _commands()
        assert "curl -k" in commands[0] and "api.voipbin.test:8443" in commands[0]
        status, login = run(commands[0])  # the sandbox section's login
        assert status == 200 and login["username"] == ADMIN_USERNAME, login
        values["your-token"] = login["token"]
        status, again = run(commands[1])
        assert status == 200 and again["token"], again
        status, key = run(commands[2])
        assert status == 200 and key["token"] and key["name"] == "my-api-key", key
        values["your-accesskey"] = key["token"]
        for command in commands[3:6]:  # GET /calls with ?token=, ?accesskey= and Bearer
            status, calls = run(command)
            assert status == 200 and calls["result"] == [], (command, calls)
        status, ext = run(commands[6])
        assert status == 200 and ext["name"] == "quickstart-phone" and ext["extension"] == "quickstart1", ext
        status, customer = run(commands[7])
        assert status == 200 and customer["webhook_uri"] == values["https://your-server.com/voipbin/events"]
        numbers = httpx.get(f"{sandbox.base_url}/v1.0/numbers", params={"token": login["token"]}).json()
        values["your-source-number"] = numbers["result"][0]["number"]
        for command in commands[8:10]:  # first call and the real-time call, to the (unregistered) extension
            status, created = run(command)
            assert status == 200, created
            group = created["groupcalls"][0]
            assert group["call_ids"] == [c["id"] for c in created["calls"]] and group["call_ids"], created
        assert "https://api.voipbin.test" in sandbox.log_path.read_text()  # the banner shows the form
    finally:
        assert sandbox.stop() in (0, -15)


def _load_agent() -> Any:
    spec = importlib.util.spec_from_file_location("seed_002_agent", SEEDS / "seed_002_agent.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_seed_002_complete_agent_talks_with_a_virtual_phone(
        sandbox: Any, api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import requests
    from werkzeug.serving import make_server

    monkeypatch.setenv("VOIPBIN_TOKEN", sandbox.token)  # the token, as the example reads it
    agent = _load_agent()
    agent.VOIPBIN_BASE = f"{sandbox.base_url}/v1.0"  # the base URL, the other thing a user changes
    posts: list[tuple[str, Any]] = []  # what the example sent (observed, passed through unchanged)
    real_post = requests.post

    def spy(url: str, *args: Any, **kwargs: Any) -> Any:
        posts.append((url, kwargs.get("json")))
        return real_post(url, *args, **kwargs)

    monkeypatch.setattr(requests, "post", spy)
    port = free_port()
    server = make_server("127.0.0.1", port, agent.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        r = await api.put("/v1.0/customer", json={"webhook_method": "POST",
                                                  "webhook_uri": f"http://127.0.0.1:{port}/webhook"})
        assert r.status_code == 200, r.text
        # seed 002 step 1 (tel -> tel, the nil flow, no actions), from the sandbox's number
        step1 = [line for line in _doc("002") if line.startswith('"flow_id"')]
        assert step1 == [f'"flow_id": "{NIL}"']
        r = await api.post("/v1.0/calls", json={"source": {"type": "tel", "target": sandbox.seed.number},
                                                "destinations": [{"type": "tel", "target": PHONE}],
                                                "flow_id": NIL})
        assert r.status_code == 200, r.text
        call_id = r.json()["groupcalls"][0]["call_ids"][0]

        async def transcribes() -> list[dict[str, Any]]:
            rows = (await api.get("/v1.0/transcribes")).json()["result"]
            return [t for t in rows if t["reference_id"] == call_id]

        async def transcripts(transcribe_id: str) -> list[dict[str, Any]]:
            rows = (await api.get("/v1.0/transcripts", params={"transcribe_id": transcribe_id})).json()["result"]
            return sorted(rows, key=lambda t: t["tm_create"])

        def replies() -> list[str]:
            return [body["text"] for url, body in posts if url.split("?")[0].endswith("/say") and body
                    and body["text"].startswith("I understand you said")]

        deadline = asyncio.get_running_loop().time() + 75
        heard: list[dict[str, Any]] = []
        while asyncio.get_running_loop().time() < deadline:
            rows = await transcribes()
            if rows:
                heard = [t for t in await transcripts(rows[0]["id"]) if t["direction"] == "in"]
            if len(heard) >= 5 and len(replies()) >= 5:
                break
            await asyncio.sleep(0.5)
        assert len(heard) >= 5 and len(replies()) >= 5, (heard, replies(), posts)

        assert (await api.delete(f"/v1.0/calls/{call_id}")).status_code == 200
        rows = await transcribes()
        assert len(rows) == 1, rows  # one transcribe per call: the webhook was not retried
        transcribe_id = rows[0]["id"]
        speakings = [s for s in (await api.get("/v1.0/speakings")).json()["result"] if s["reference_id"] == call_id]
        assert len(speakings) == 1 and speakings[0]["provider"] == "elevenlabs", speakings
        def stops() -> list[str]:
            return [url.split("?")[0] for url, _ in posts if url.split("?")[0].endswith("/stop")]

        for _ in range(100):  # the example stops both sessions on call_hangup
            if len(stops()) >= 2:
                break
            await asyncio.sleep(0.1)
        assert agent.call_sessions == {}
        assert sorted(stops()) == sorted([f"{agent.VOIPBIN_BASE}/transcribes/{transcribe_id}/stop",
                                        f"{agent.VOIPBIN_BASE}/speakings/{speakings[0]['id']}/stop"])
        assert (await api.get(f"/v1.0/transcribes/{transcribe_id}")).json()["status"] == "done"
        assert (await api.get(f"/v1.0/speakings/{speakings[0]['id']}")).json()["status"] == "stopped"

        everything = await transcripts(transcribe_id)
        ins = [t["message"].lower() for t in everything if t["direction"] == "in"]
        assert not [m for m in ins if any(w in m for w in AGENT_WORDS)], ins  # the agent never hears itself
        outs = [t["message"].lower() for t in everything if t["direction"] == "out"]
        assert sum("understand" in m for m in outs) >= 3, outs  # the phone heard the agent's replies
    finally:
        server.shutdown()
        thread.join(5)
