"""The managed AI's resources over HTTP: ``/v1.0/ais`` (CRUD, validation naming the field, the key
never returned, nor in any event), ``/v1.0/aicalls`` and ``/v1.0/aimessages`` (rows written through
the service the turn loop uses, read through the API; terminate and inject reach a live
conversation), foreign ids 404. Bodies are validated against the upstream spec."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import select

from voipbin.ai.service import AiConfig, AiService
from voipbin.common.errors import InvalidArgument, NotFound
from voipbin.events.bus import event_queue
from voipbin.events.model import Event
from voipbin.store.models import Ai

KEY = "sk-test-Sup3rSecretProviderKey-9f3a"
AI_BODY: dict[str, Any] = {
    "name": "Support bot", "detail": "answers the phone", "type": "normal", "engine_model": "openai.gpt-5",
    "engine_key": KEY, "parameter": {"department": "support"}, "init_prompt": "You are a helpful assistant.",
    "tts_type": "piper", "tts_voice_id": "en_US-lessac-medium", "stt_type": "", "stt_language": "en-us",
    "vad_config": {"confidence": 0.7, "start_secs": 0.2, "stop_secs": 0.5, "min_volume": 0.6},
    "tool_names": ["stop_service", "connect_call"],
}


class FakeLive:
    """Stands for the turn loop: records what the API asks of it."""

    def __init__(self) -> None:
        self.injected: list[tuple[str, str]] = []
        self.terminated = False

    async def terminate(self) -> None:
        self.terminated = True

    def inject(self, role: str, content: str) -> None:
        self.injected.append((role, content))


@pytest_asyncio.fixture
async def ais(runtime: Any) -> AiService:
    return runtime.ais  # type: ignore[no-any-return]


@pytest_asyncio.fixture
async def events(runtime: Any) -> AsyncIterator[asyncio.Queue[Event]]:
    queue, sub = await event_queue(runtime.bus, f"customer_id:{runtime.seed.customer_id}")
    yield queue
    await sub.unsubscribe()


@pytest_asyncio.fixture
async def other_token(client: httpx.AsyncClient, runtime: Any) -> str:
    from voipbin.auth.identity import PERMISSION_CUSTOMER_ADMIN
    from voipbin.auth.login import LoginService

    async with runtime.sessions() as session, session.begin():
        other = await runtime.customers.create(session, email="other@example.com")
        await LoginService.add_agent(session, customer_id=other.id, username="other@example.com",
                                     password="other-pass", permission=PERMISSION_CUSTOMER_ADMIN)
    r = await client.post("/auth/login", json={"username": "other@example.com", "password": "other-pass"})
    return str(r.json()["token"])


async def _next(queue: asyncio.Queue[Event], event_type: str, resource_id: str, seen: list[Event]) -> Event:
    """The next event ``event_type`` about ``resource_id``; every event read is appended to ``seen``."""
    while True:
        event = await asyncio.wait_for(queue.get(), 10)
        seen.append(event)
        if event.event_type == event_type and event.resource_id == resource_id:
            return event


async def _create(client: httpx.AsyncClient, token: str, **changes: Any) -> dict[str, Any]:
    r = await client.post("/v1.0/ais", params={"token": token}, json={**AI_BODY, **changes})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_ai_crud_never_shows_the_key(client: httpx.AsyncClient, admin_token: str, runtime: Any, ais: AiService,
                                           events: asyncio.Queue[Event], spec: Any) -> None:
    q = {"token": admin_token}
    bodies: list[str] = []
    seen: list[Event] = []
    ai = await _create(client, admin_token)
    spec.validate("AIManagerAI", ai)
    assert ai["engine_key"] == "****9f3a"
    assert ai["stt_language"] == "en-US" and ai["tool_names"] == ["stop_service", "connect_call"]
    assert ai["vad_config"]["stop_secs"] == 0.5 and ai["tts_type"] == "piper"
    await _next(events, "ai_created", ai["id"], seen)

    for r in (await client.get(f"/v1.0/ais/{ai['id']}", params=q), await client.get("/v1.0/ais", params=q)):
        assert r.status_code == 200
        bodies.append(r.text)
    listed = json.loads(bodies[-1])["result"]
    assert [a["id"] for a in listed] == [ai["id"]]
    spec.validate("AIManagerAI", listed[0])

    # null and missing fields are left as they are
    r = await client.put(f"/v1.0/ais/{ai['id']}", params=q, json={"name": "Renamed", "engine_key": None,
                                                                  "init_prompt": None})
    assert r.status_code == 200, r.text
    bodies.append(r.text)
    assert r.json()["name"] == "Renamed" and r.json()["init_prompt"] == AI_BODY["init_prompt"]
    assert r.json()["engine_key"] == "****9f3a" and r.json()["tool_names"] == AI_BODY["tool_names"]
    await _next(events, "ai_updated", ai["id"], seen)
    config = await ais.resolve(runtime.seed.customer_id, {"assistance_type": "ai", "assistance_id": ai["id"]})
    assert config.api_key == KEY and config.engine_model == "openai.gpt-5"
    assert KEY not in repr(config)

    new_key = "sk-another-key-7777"
    r = await client.put(f"/v1.0/ais/{ai['id']}", params=q, json={"engine_key": new_key})
    bodies.append(r.text)
    assert r.json()["engine_key"] == "****7777"
    assert (await ais.resolve(runtime.seed.customer_id, {"ai_id": ai["id"]})).api_key == new_key

    async with runtime.sessions() as db:
        stored = (await db.scalars(select(Ai).where(Ai.id == ai["id"]))).one()
    assert KEY not in stored.engine_key_encrypted and new_key not in stored.engine_key_encrypted

    r = await client.delete(f"/v1.0/ais/{ai['id']}", params=q)
    assert r.status_code == 200 and r.json()["tm_delete"] is not None
    bodies.append(r.text)
    deleted = await _next(events, "ai_deleted", ai["id"], seen)
    assert deleted.resource == "ai"
    assert (await client.get(f"/v1.0/ais/{ai['id']}", params=q)).status_code == 404
    with pytest.raises(NotFound):
        await ais.resolve(runtime.seed.customer_id, {"assistance_id": ai["id"]})

    for text in [*bodies, *(json.dumps(e.data) for e in seen)]:
        assert KEY not in text and new_key not in text


async def test_local_engine_needs_no_key(client: httpx.AsyncClient, admin_token: str, runtime: Any,
                                         ais: AiService) -> None:
    body = {"name": "offline", "engine_model": "local.default", "init_prompt": "Be brief."}
    r = await client.post("/v1.0/ais", params={"token": admin_token}, json=body)
    assert r.status_code == 200, r.text
    assert r.json()["engine_key"] == ""
    config = await ais.resolve(runtime.seed.customer_id, {"assistance_id": r.json()["id"]})
    assert config.api_key == "" and config.init_prompt == "Be brief."
    # moving to a provider that needs a key, without one, is refused and changes nothing
    r2 = await client.put(f"/v1.0/ais/{r.json()['id']}", params={"token": admin_token},
                          json={"engine_model": "anthropic.claude-sonnet-4"})
    assert r2.status_code == 400 and "engine_key" in r2.json()["error"]["message"]
    r3 = await client.get(f"/v1.0/ais/{r.json()['id']}", params={"token": admin_token})
    assert r3.json()["engine_model"] == "local.default"


@pytest.mark.parametrize(("changes", "field"), [
    ({"name": None}, "name"),
    ({"name": 5}, "name"),
    ({"engine_model": None}, "engine_model"),
    ({"engine_model": "gpt-5"}, "engine_model"),
    ({"engine_model": "mistral.large"}, "engine_model"),
    ({"engine_key": None}, "engine_key"),
    ({"engine_key": ""}, "engine_key"),
    ({"type": "insight"}, "type"),
    ({"type": "clever"}, "type"),
    ({"tts_type": "cartesia"}, "tts_type"),
    ({"tts_type": "nope"}, "tts_type"),
    ({"stt_type": "deepgram"}, "stt_type"),
    ({"stt_language": "en_US"}, "stt_language"),
    ({"vad_config": {"confidence": 1.5}}, "vad_config.confidence"),
    ({"vad_config": {"stop_secs": "0.2"}}, "vad_config.stop_secs"),
    ({"vad_config": {"loudness": 1}}, "vad_config.loudness"),
    ({"vad_config": [1]}, "vad_config"),
    ({"tool_names": ["hack_the_planet"]}, "tool_names"),
    ({"tool_names": "all"}, "tool_names"),
    ({"parameter": [1, 2]}, "parameter"),
    ({"init_prompt": 42}, "init_prompt"),
    ({"rag_id": "a1b2c3d4-e5f6-7890-abcd-ef1234567890"}, "rag_id"),
    ({"smart_turn_enabled": "yes"}, "smart_turn_enabled"),
])
async def test_ai_validation_names_the_field(client: httpx.AsyncClient, admin_token: str, changes: dict[str, Any],
                                             field: str) -> None:
    r = await client.post("/v1.0/ais", params={"token": admin_token}, json={**AI_BODY, **changes})
    assert r.status_code == 400, r.text
    assert field in r.json()["error"]["message"]
    if "not supported" in r.json()["error"]["message"]:
        assert changes.get("type") == "insight" or "tts_type" in changes or "stt_type" in changes or "rag_id" in changes
    assert KEY not in r.text
    assert (await client.get("/v1.0/ais", params={"token": admin_token})).json()["result"] == []


async def test_all_tools_and_unsupported_choices(client: httpx.AsyncClient, admin_token: str) -> None:
    ai = await _create(client, admin_token, tool_names=["all"], tts_type="", stt_language="")
    assert ai["tool_names"] == ["all"] and ai["stt_language"] == ""
    r = await client.put(f"/v1.0/ais/{ai['id']}", params={"token": admin_token}, json={"stt_type": "cartesia"})
    assert r.status_code == 400 and "not supported by this deployment" in r.json()["error"]["message"]


async def test_resolve_options(client: httpx.AsyncClient, admin_token: str, other_token: str, runtime: Any,
                               ais: AiService) -> None:
    customer = runtime.seed.customer_id
    foreign = await _create(client, other_token)
    with pytest.raises(NotFound):
        await ais.resolve(customer, {"assistance_type": "ai", "assistance_id": foreign["id"]})
    with pytest.raises(InvalidArgument) as team:
        await ais.resolve(customer, {"assistance_type": "team", "assistance_id": foreign["id"]})
    assert team.value.field == "option.assistance_type" and "not supported" in team.value.message
    inline = await ais.resolve(customer, {"initial_prompt": "Say hi.", "language": "de-de", "tts_voice_id": "v1"})
    assert inline == AiConfig(ai_id="", engine_model="local.default", api_key="", init_prompt="Say hi.",
                              stt_language="de-DE", tts_voice_id="v1")
    keyless = await ais.resolve(customer, {"initial_prompt": "Say hi.", "engine_model": "openai.gpt-5"})
    assert keyless.engine_model == "openai.gpt-5" and keyless.api_key == ""  # the deployment's key, if any
    with pytest.raises(InvalidArgument) as bad_model:
        await ais.resolve(customer, {"initial_prompt": "Say hi.", "engine_model": "gpt-5"})
    assert bad_model.value.field == "option.engine_model"
    with pytest.raises(InvalidArgument) as neither:
        await ais.resolve(customer, {})
    assert neither.value.field == "option.assistance_id"


async def test_aicall_lifecycle_through_the_api(client: httpx.AsyncClient, admin_token: str, runtime: Any,
                                                ais: AiService, events: asyncio.Queue[Event], spec: Any) -> None:
    q = {"token": admin_token}
    seen: list[Event] = []
    customer = runtime.seed.customer_id
    ai = await _create(client, admin_token)
    config = await ais.resolve(customer, {"assistance_type": "ai", "assistance_id": ai["id"]})
    call_id, activeflow_id = "6a0d3b4e-2f4c-4b55-9c1e-0a7c0f1e2d3c", "1f2e3d4c-5b6a-4789-8abc-def012345678"
    aicall = await ais.start_aicall(customer, config, reference_id=call_id, activeflow_id=activeflow_id,
                                    prompt="You are a helpful assistant for Alice.")
    created = await _next(events, "aicall_created", aicall.id, seen)
    assert created.resource == "aicall" and created.data["status"] == "initiating"
    assert (await _next(events, "aicall_status_progressing", aicall.id, seen)).data["status"] == "progressing"

    said = await ais.add_message(aicall, role="user", content="Hello?", direction="incoming")
    await ais.add_message(aicall, role="assistant", content="Hi, how can I help?", direction="outgoing",
                          tool_calls=[{"id": "call_1", "type": "function",
                                       "function": {"name": "stop_service", "arguments": "{}"}}])
    message_event = await _next(events, "aimessage_created", said.id, seen)
    assert message_event.resource == "aimessage" and message_event.data["content"] == "Hello?"
    await ais.record_turn(aicall.id, usage={"prompt_tokens": 30, "completion_tokens": 7},
                          latency_ms={"stt": 120.0, "llm_first_token": 300.5})
    await ais.record_turn(aicall.id, usage={"prompt_tokens": 45, "completion_tokens": 9}, latency_ms={"stt": 90.0})

    r = await client.get(f"/v1.0/aicalls/{aicall.id}", params=q)
    assert r.status_code == 200
    body = r.json()
    spec.validate("AIManagerAIcall", body)
    spec.validate("AIManagerPromptSnapshot", body["metadata"]["prompt_snapshots"][0])
    assert body["status"] == "progressing" and body["assistance_id"] == ai["id"]
    assert body["reference_id"] == call_id and body["activeflow_id"] == activeflow_id
    assert body["ai_engine_model"] == "openai.gpt-5" and body["stt_language"] == "en-US"
    assert body["metadata"]["prompt_snapshots"][0]["prompt"] == "You are a helpful assistant for Alice."
    assert body["metadata"]["usage"] == {"prompt_tokens": 75, "completion_tokens": 16}
    assert [t["latency_ms"] for t in body["metadata"]["turns"]] == [{"stt": 120.0, "llm_first_token": 300.5},
                                                                     {"stt": 90.0}]
    listed = (await client.get("/v1.0/aicalls", params=q)).json()["result"]
    assert [c["id"] for c in listed] == [aicall.id]

    r = await client.get("/v1.0/aimessages", params={**q, "aicall_id": aicall.id})
    messages = r.json()["result"]
    assert [m["role"] for m in messages] == ["assistant", "user"]  # newest first
    for m in messages:
        spec.validate("AIManagerMessage", m)
        assert m["aicall_id"] == aicall.id and m["active_ai_id"] == ai["id"]
    assert messages[0]["tool_calls"][0]["function"]["name"] == "stop_service"
    one = (await client.get(f"/v1.0/aimessages/{said.id}", params=q)).json()
    assert one["content"] == "Hello?" and one["direction"] == "incoming"
    missing = await client.get("/v1.0/aimessages", params=q)
    assert missing.status_code == 400 and "aicall_id" in missing.json()["error"]["message"]

    # not live on this process yet: nothing to inject into
    r = await client.post("/v1.0/aimessages", params=q, json={"aicall_id": aicall.id, "role": "user",
                                                              "content": "Hi"})
    assert r.status_code == 400 and "aicall_id" in r.json()["error"]["message"]
    live = FakeLive()
    ais.attach_live(aicall.id, live)
    r = await client.post("/v1.0/aimessages", params=q, json={"aicall_id": aicall.id, "role": "user",
                                                              "content": "What time is it?"})
    assert r.status_code == 200, r.text
    spec.validate("AIManagerMessage", r.json())
    injected = await _next(events, "aimessage_created", r.json()["id"], seen)
    assert injected.data["role"] == "user" and injected.data["direction"] == "incoming"
    await client.post("/v1.0/aimessages", params=q, json={"aicall_id": aicall.id, "role": "system",
                                                          "content": "Be terse."})
    assert live.injected == [("user", "What time is it?"), ("system", "Be terse.")]
    for bad, field in (({"role": "assistant"}, "role"), ({"content": ""}, "content"),
                       ({"aicall_id": "nope"}, "aicall_id")):
        r = await client.post("/v1.0/aimessages", params=q,
                              json={"aicall_id": aicall.id, "role": "user", "content": "x", **bad})
        assert r.status_code == 400 and field in r.json()["error"]["message"]

    r = await client.post(f"/v1.0/aicalls/{aicall.id}/terminate", params=q)
    assert r.status_code == 200 and live.terminated
    assert r.json()["status"] == "terminated" and r.json()["tm_end"] is not None
    spec.validate("AIManagerAIcall", r.json())
    assert (await _next(events, "aicall_status_terminating", aicall.id, seen)).data["status"] == "terminating"
    assert (await _next(events, "aicall_status_terminated", aicall.id, seen)).data["tm_end"] is not None
    # the loop ending afterwards changes nothing more
    ais.detach_live(aicall.id)
    assert (await ais.end_aicall(aicall.id)).status == "terminated"
    r = await client.post("/v1.0/aimessages", params=q, json={"aicall_id": aicall.id, "role": "user",
                                                              "content": "still there?"})
    assert r.status_code == 400

    r = await client.delete(f"/v1.0/aicalls/{aicall.id}", params=q)
    assert r.status_code == 200 and r.json()["tm_delete"] is not None
    await _next(events, "aicall_deleted", aicall.id, seen)
    assert (await client.get(f"/v1.0/aicalls/{aicall.id}", params=q)).status_code == 404
    kinds = [e.event_type for e in seen if e.resource_id == aicall.id]
    assert kinds.count("aicall_status_terminated") == 1 and kinds.count("aicall_status_terminating") == 1
    for e in seen:
        assert KEY not in json.dumps(e.data)


async def test_delete_of_a_live_aicall_terminates_it_first(client: httpx.AsyncClient, admin_token: str,
                                                           runtime: Any, ais: AiService) -> None:
    config = await ais.resolve(runtime.seed.customer_id, {"initial_prompt": "Hi"})
    aicall = await ais.start_aicall(runtime.seed.customer_id, config, reference_id="", activeflow_id="",
                                    prompt="Hi")
    live = FakeLive()
    ais.attach_live(aicall.id, live)
    r = await client.delete(f"/v1.0/aicalls/{aicall.id}", params={"token": admin_token})
    assert r.status_code == 200 and live.terminated
    assert r.json()["status"] == "terminated" and r.json()["assistance_type"] == ""
    assert r.json()["metadata"]["prompt_snapshots"][0]["ai_id"] == "00000000-0000-0000-0000-000000000000"


async def test_foreign_ids_are_404(client: httpx.AsyncClient, admin_token: str, other_token: str, runtime: Any,
                                   ais: AiService) -> None:
    ai = await _create(client, admin_token)
    config = await ais.resolve(runtime.seed.customer_id, {"assistance_id": ai["id"]})
    aicall = await ais.start_aicall(runtime.seed.customer_id, config, reference_id="", activeflow_id="", prompt="")
    message = await ais.add_message(aicall, role="user", content="hi", direction="incoming")
    live = FakeLive()
    ais.attach_live(aicall.id, live)
    o = {"token": other_token}
    requests = [
        client.get(f"/v1.0/ais/{ai['id']}", params=o),
        client.put(f"/v1.0/ais/{ai['id']}", params=o, json={"name": "mine"}),
        client.delete(f"/v1.0/ais/{ai['id']}", params=o),
        client.get(f"/v1.0/aicalls/{aicall.id}", params=o),
        client.post(f"/v1.0/aicalls/{aicall.id}/terminate", params=o),
        client.delete(f"/v1.0/aicalls/{aicall.id}", params=o),
        client.get("/v1.0/aimessages", params={**o, "aicall_id": aicall.id}),
        client.get(f"/v1.0/aimessages/{message.id}", params=o),
        client.post("/v1.0/aimessages", params=o, json={"aicall_id": aicall.id, "role": "user", "content": "x"}),
        client.get("/v1.0/ais/00000000-0000-0000-0000-000000000001", params={"token": admin_token}),
    ]
    for request in requests:
        r = await request
        assert r.status_code == 404, r.text
    assert not live.terminated and live.injected == []
    assert (await client.get("/v1.0/ais", params=o)).json()["result"] == []
    assert (await client.get("/v1.0/aicalls", params=o)).json()["result"] == []
    r = await client.get(f"/v1.0/aicalls/{aicall.id}", params={"token": admin_token})
    assert r.json()["status"] == "progressing"


async def test_flow_validation_checks_the_ai_is_the_accounts(client: httpx.AsyncClient, admin_token: str,
                                                              other_token: str, runtime: Any, ais: AiService) -> None:
    customer = runtime.seed.customer_id
    mine, foreign = await _create(client, admin_token), await _create(client, other_token)
    await ais.check_talk_option(customer, {"assistance_type": "ai", "assistance_id": mine["id"]}, "actions[1].option")
    await ais.check_talk_option(customer, {"initial_prompt": "Hi"}, "actions[1].option")
    for option, field in (({"assistance_id": foreign["id"]}, "actions[1].option.assistance_id"),
                          ({"ai_id": "6a0d3b4e-2f4c-4b55-9c1e-0a7c0f1e2d3c"}, "actions[1].option.ai_id")):
        with pytest.raises(InvalidArgument) as err:
            await ais.check_talk_option(customer, option, "actions[1].option")
        assert err.value.field == field
    await client.delete(f"/v1.0/ais/{mine['id']}", params={"token": admin_token})
    with pytest.raises(InvalidArgument):
        await ais.check_talk_option(customer, {"ai_id": mine["id"]}, "actions[1].option")
