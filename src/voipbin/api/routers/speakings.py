"""``/v1.0/speakings``: streaming TTS into live calls (seed 004).

A speaking runs on the pod holding its call or conference: its commands are routed there
(``runtime.pods``, :mod:`voipbin.pods.router`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse

from voipbin.api.deps import IdentityDep, ManagerDep, RuntimeDep
from voipbin.api.routing import LeanRoute
from voipbin.runtime import Runtime
from voipbin.api.schemas import Page, PageSize, SpeakingCreate, SpeakingSay, TtsManagerSpeaking
from voipbin.speakings import serialize

router = APIRouter(prefix="/v1.0", tags=["Speaking"], route_class=LeanRoute)


@router.post("/speakings", response_model=TtsManagerSpeaking, status_code=201)
async def create(identity: ManagerDep, runtime: RuntimeDep, body: Annotated[SpeakingCreate, Body()]) -> JSONResponse:
    """201 ``initiating``; ``active`` (and ``speaking_started``) once the TTS provider is ready.

    400: bad field, call not progressing, unknown provider or one without credentials;
    404: unknown call; 409: another speaking is active on the call.
    """
    fields = body.model_dump()
    kind = "call" if fields.get("reference_type") == "call" else "conference"
    row = await runtime.pods.route(kind, str(fields.get("reference_id") or ""), "speakings.create",
                                   customer_id=identity.customer_id, body=fields)
    return JSONResponse(row, status_code=201)


@router.get("/speakings", response_model=Page[TtsManagerSpeaking])
async def list_speakings(identity: IdentityDep, runtime: RuntimeDep, page_size: PageSize = None,
                         page_token: str | None = None) -> JSONResponse:
    items, token = await runtime.speakings.list(identity.customer_id, page_size, page_token)
    return JSONResponse({"result": [serialize.speaking(s) for s in items], "next_page_token": token})


@router.get("/speakings/{speaking_id}", response_model=TtsManagerSpeaking)
async def get_speaking(speaking_id: str, identity: IdentityDep, runtime: RuntimeDep) -> JSONResponse:
    return JSONResponse(serialize.speaking(await runtime.speakings.get(identity.customer_id, speaking_id)))


@router.post("/speakings/{speaking_id}/say", response_model=TtsManagerSpeaking)
async def say(speaking_id: str, identity: ManagerDep, runtime: RuntimeDep,
              body: Annotated[SpeakingSay, Body()]) -> JSONResponse:
    """Queue text (1-5000 characters); 400 unless the speaking is ``active``."""
    return JSONResponse(await _on_speaking(runtime, "speakings.say", identity.customer_id, speaking_id,
                                           text=body.text))


@router.post("/speakings/{speaking_id}/flush", response_model=TtsManagerSpeaking)
async def flush(speaking_id: str, identity: ManagerDep, runtime: RuntimeDep) -> JSONResponse:
    """Silence the call within one 20 ms frame and drop queued text; the speaking stays ``active``."""
    return JSONResponse(await _on_speaking(runtime, "speakings.flush", identity.customer_id, speaking_id))


@router.post("/speakings/{speaking_id}/stop", response_model=TtsManagerSpeaking)
async def stop(speaking_id: str, identity: ManagerDep, runtime: RuntimeDep) -> JSONResponse:
    return JSONResponse(await _on_speaking(runtime, "speakings.stop", identity.customer_id, speaking_id))


@router.delete("/speakings/{speaking_id}", response_model=TtsManagerSpeaking)
async def delete(speaking_id: str, identity: ManagerDep, runtime: RuntimeDep) -> JSONResponse:
    """Stop if still active, then soft-delete."""
    return JSONResponse(await _on_speaking(runtime, "speakings.delete", identity.customer_id, speaking_id))


async def _on_speaking(runtime: Runtime, command: str, customer_id: str, speaking_id: str, **args: Any) -> Any:
    """Run ``command`` on the pod holding ``speaking_id``."""
    return await runtime.pods.route("speaking", speaking_id, command, customer_id=customer_id,
                                    speaking_id=speaking_id, **args)
