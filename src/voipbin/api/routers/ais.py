"""``/v1.0/ais``, ``/v1.0/aicalls``, ``/v1.0/aimessages``: the managed AI's configurations, its
conversations on calls and their messages (:mod:`voipbin.ai`). Reads are owned-or-404; writes need
the manager permission. ``engine_key`` is never returned (``"****"`` + its last 4 characters)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse

from voipbin.ai import serialize
from voipbin.api.deps import IdentityDep, ManagerDep, RuntimeDep
from voipbin.api.routing import LeanRoute
from voipbin.api.schemas import Page, PageSize
from voipbin.api.schemas_ai import AIManagerAI, AIManagerAIcall, AIManagerMessage, AimessageSend, AiWrite

router = APIRouter(prefix="/v1.0", tags=["AI"], route_class=LeanRoute)


@router.post("/ais", response_model=AIManagerAI)
async def create(identity: ManagerDep, runtime: RuntimeDep, body: Annotated[AiWrite, Body()]) -> JSONResponse:
    """A new AI (``ai_created``). 400 naming a bad field (``engine_key`` is required unless ``local.*``)."""
    row = await runtime.ais.records.create(identity.customer_id, body.model_dump())
    return JSONResponse(serialize.ai(row))


@router.get("/ais", response_model=Page[AIManagerAI])
async def list_ais(identity: IdentityDep, runtime: RuntimeDep, page_size: PageSize = None,
                   page_token: str | None = None) -> JSONResponse:
    items, token = await runtime.ais.records.list(identity.customer_id, page_size, page_token)
    return JSONResponse({"result": [serialize.ai(a) for a in items], "next_page_token": token})


@router.get("/ais/{ai_id}", response_model=AIManagerAI)
async def get_ai(ai_id: str, identity: IdentityDep, runtime: RuntimeDep) -> JSONResponse:
    return JSONResponse(serialize.ai(await runtime.ais.records.get(identity.customer_id, ai_id)))


@router.put("/ais/{ai_id}", response_model=AIManagerAI)
async def update(ai_id: str, identity: ManagerDep, runtime: RuntimeDep,
                 body: Annotated[AiWrite, Body()]) -> JSONResponse:
    """The fields given (null: unchanged) (``ai_updated``)."""
    row = await runtime.ais.records.update(identity.customer_id, ai_id, body.model_dump())
    return JSONResponse(serialize.ai(row))


@router.delete("/ais/{ai_id}", response_model=AIManagerAI)
async def delete(ai_id: str, identity: ManagerDep, runtime: RuntimeDep) -> JSONResponse:
    return JSONResponse(serialize.ai(await runtime.ais.records.delete(identity.customer_id, ai_id)))


@router.get("/aicalls", response_model=Page[AIManagerAIcall])
async def list_aicalls(identity: IdentityDep, runtime: RuntimeDep, page_size: PageSize = None,
                       page_token: str | None = None) -> JSONResponse:
    items, token = await runtime.ais.list_aicalls(identity.customer_id, page_size, page_token)
    return JSONResponse({"result": [serialize.aicall(c) for c in items], "next_page_token": token})


@router.get("/aicalls/{aicall_id}", response_model=AIManagerAIcall)
async def get_aicall(aicall_id: str, identity: IdentityDep, runtime: RuntimeDep) -> JSONResponse:
    return JSONResponse(serialize.aicall(await runtime.ais.get_aicall(identity.customer_id, aicall_id)))


@router.delete("/aicalls/{aicall_id}", response_model=AIManagerAIcall)
async def delete_aicall(aicall_id: str, identity: ManagerDep, runtime: RuntimeDep) -> JSONResponse:
    """Terminated first if it is not (the conversation stops; the call goes on with its flow), then deleted."""
    return JSONResponse(await runtime.pods.route("aicall", aicall_id, "aicalls.delete",
                                                 customer_id=identity.customer_id, aicall_id=aicall_id))


@router.post("/aicalls/{aicall_id}/terminate", response_model=AIManagerAIcall)
async def terminate(aicall_id: str, identity: ManagerDep, runtime: RuntimeDep) -> JSONResponse:
    """The conversation stops (``terminating``, ``terminated``); the call goes on with its flow."""
    return JSONResponse(await runtime.pods.route("aicall", aicall_id, "aicalls.terminate",
                                                 customer_id=identity.customer_id, aicall_id=aicall_id))


@router.get("/aimessages", response_model=Page[AIManagerMessage])
async def list_aimessages(identity: IdentityDep, runtime: RuntimeDep, aicall_id: str | None = None,
                          page_size: PageSize = None, page_token: str | None = None) -> JSONResponse:
    """Messages of ``aicall_id`` (required; 404 for another account's), newest first."""
    items, token = await runtime.ais.list_messages(identity.customer_id, aicall_id, page_size, page_token)
    return JSONResponse({"result": [serialize.aimessage(m) for m in items], "next_page_token": token})


@router.get("/aimessages/{aimessage_id}", response_model=AIManagerMessage)
async def get_aimessage(aimessage_id: str, identity: IdentityDep, runtime: RuntimeDep) -> JSONResponse:
    return JSONResponse(serialize.aimessage(await runtime.ais.get_message(identity.customer_id, aimessage_id)))


@router.post("/aimessages", response_model=AIManagerMessage)
async def send(identity: ManagerDep, runtime: RuntimeDep, body: Annotated[AimessageSend, Body()]) -> JSONResponse:
    """A ``user`` or ``system`` message into a live, ``progressing`` conversation (400 otherwise)."""
    fields = body.model_dump()
    return JSONResponse(await runtime.pods.route("aicall", str(fields.get("aicall_id") or ""), "aimessages.send",
                                                 customer_id=identity.customer_id, body=fields))
