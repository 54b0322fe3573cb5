"""``/v1.0/conferences`` and ``/v1.0/conferencecalls``: conference rooms and their participants.

A conference lives on one media pod (its ``pod_id``): created on a media pod, its commands (update,
delete, transcribe, kick) are routed there (``runtime.pods``, :mod:`voipbin.pods.router`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse

from voipbin.api.deps import IdentityDep, ManagerDep, RuntimeDep
from voipbin.api.routing import LeanRoute
from voipbin.runtime import Runtime
from voipbin.api.schemas import Page, PageSize
from voipbin.api.schemas_conferences import (
    ConferenceCreate, ConferenceManagerConference, ConferenceManagerConferencecall, ConferenceTranscribeStart,
    ConferenceUpdate,
)
from voipbin.conferences import serialize

router = APIRouter(prefix="/v1.0", tags=["Conference"], route_class=LeanRoute)


@router.post("/conferences", response_model=ConferenceManagerConference)
async def create(identity: ManagerDep, runtime: RuntimeDep,
                 body: Annotated[ConferenceCreate, Body()]) -> JSONResponse:
    """The room, ``progressing`` (``conference_created``, then ``conference_updated``). 400 naming a bad field."""
    return JSONResponse(await runtime.pods.place("conferences.create", customer_id=identity.customer_id,
                                                 body=body.model_dump()))


@router.get("/conferences", response_model=Page[ConferenceManagerConference])
async def list_conferences(identity: IdentityDep, runtime: RuntimeDep, page_size: PageSize = None,
                           page_token: str | None = None) -> JSONResponse:
    items, token = await runtime.conferences.list(identity.customer_id, page_size, page_token)
    return JSONResponse({"result": [serialize.conference(c) for c in items], "next_page_token": token})


@router.get("/conferences/{conference_id}", response_model=ConferenceManagerConference)
async def get_conference(conference_id: str, identity: IdentityDep, runtime: RuntimeDep) -> JSONResponse:
    return JSONResponse(serialize.conference(await runtime.conferences.get(identity.customer_id, conference_id)))


@router.put("/conferences/{conference_id}", response_model=ConferenceManagerConference)
async def update(conference_id: str, identity: ManagerDep, runtime: RuntimeDep,
                 body: Annotated[ConferenceUpdate, Body()]) -> JSONResponse:
    return JSONResponse(await _on_conference(runtime, "conferences.update", identity.customer_id, conference_id,
                                             body=body.model_dump()))


@router.delete("/conferences/{conference_id}", response_model=ConferenceManagerConference)
async def delete(conference_id: str, identity: ManagerDep, runtime: RuntimeDep) -> JSONResponse:
    """``terminating``: speakings and transcribes stop, participants are released (their flows go on);
    then ``terminated`` and deleted."""
    return JSONResponse(await _on_conference(runtime, "conferences.delete", identity.customer_id, conference_id))


@router.post("/conferences/{conference_id}/transcribe_start", response_model=ConferenceManagerConference)
async def transcribe_start(conference_id: str, identity: ManagerDep, runtime: RuntimeDep,
                           body: Annotated[ConferenceTranscribeStart, Body()]) -> JSONResponse:
    """A transcribe of the room (``reference_type`` ``confbridge``, direction ``both``): one STT stream
    per participant; ``transcribe_id`` names it. 400 when not progressing or one runs already."""
    return JSONResponse(await _on_conference(runtime, "conferences.transcribe_start", identity.customer_id,
                                             conference_id, language=body.language))


@router.post("/conferences/{conference_id}/transcribe_stop", response_model=ConferenceManagerConference)
async def transcribe_stop(conference_id: str, identity: ManagerDep, runtime: RuntimeDep) -> JSONResponse:
    """The room's transcribe ends (``done``); 400 when none runs."""
    return JSONResponse(await _on_conference(runtime, "conferences.transcribe_stop", identity.customer_id,
                                             conference_id))


@router.get("/conferencecalls", response_model=Page[ConferenceManagerConferencecall])
async def list_conferencecalls(identity: IdentityDep, runtime: RuntimeDep, page_size: PageSize = None,
                               page_token: str | None = None, conference_id: str | None = None) -> JSONResponse:
    items, token = await runtime.conferences.list_conferencecalls(identity.customer_id, page_size, page_token,
                                                                  conference_id)
    return JSONResponse({"result": [serialize.conferencecall(c) for c in items], "next_page_token": token})


@router.get("/conferencecalls/{conferencecall_id}", response_model=ConferenceManagerConferencecall)
async def get_conferencecall(conferencecall_id: str, identity: IdentityDep, runtime: RuntimeDep) -> JSONResponse:
    row = await runtime.conferences.get_conferencecall(identity.customer_id, conferencecall_id)
    return JSONResponse(serialize.conferencecall(row))


@router.delete("/conferencecalls/{conferencecall_id}", response_model=ConferenceManagerConferencecall)
async def kick(conferencecall_id: str, identity: ManagerDep, runtime: RuntimeDep) -> JSONResponse:
    """The participant leaves the room (``leaved``); its call goes on with its flow. One that has left
    already comes back unchanged (200, upstream's no-op)."""
    return JSONResponse(await runtime.pods.route("conferencecall", conferencecall_id, "conferencecalls.kick",
                                                 customer_id=identity.customer_id,
                                                 conferencecall_id=conferencecall_id))


async def _on_conference(runtime: Runtime, command: str, customer_id: str, conference_id: str, **args: Any) -> Any:
    """Run ``command`` on the pod holding ``conference_id``."""
    return await runtime.pods.route("conference", conference_id, command, customer_id=customer_id,
                                    conference_id=conference_id, **args)
