"""``/v1.0/transcribes`` and ``/v1.0/transcripts``: live transcription of calls.

A transcribe runs on the pod holding its call or conference: its commands are routed there
(``runtime.pods``, :mod:`voipbin.pods.router`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse

from voipbin.api.deps import IdentityDep, ManagerDep, RuntimeDep
from voipbin.api.routing import LeanRoute
from voipbin.api.schemas import Page, PageSize, TranscribeCreate, TranscribeManagerTranscribe, TranscribeManagerTranscript
from voipbin.transcribes import serialize

router = APIRouter(prefix="/v1.0", tags=["Transcribe"], route_class=LeanRoute)


@router.post("/transcribes", response_model=TranscribeManagerTranscribe)
async def create(identity: ManagerDep, runtime: RuntimeDep,
                 body: Annotated[TranscribeCreate, Body()]) -> JSONResponse:
    """Start transcribing a ``progressing`` call; ``transcript_created`` events follow.

    400: bad field, call not progressing, unsupported reference type or language; 404: unknown
    call; 409: the call already has a progressing transcribe in that language.
    """
    fields = body.model_dump()
    kind = "call" if fields.get("reference_type") == "call" else "conference"
    return JSONResponse(await runtime.pods.route(kind, str(fields.get("reference_id") or ""), "transcribes.create",
                                                 customer_id=identity.customer_id, body=fields))


@router.get("/transcribes", response_model=Page[TranscribeManagerTranscribe])
async def list_transcribes(identity: IdentityDep, runtime: RuntimeDep, page_size: PageSize = None,
                           page_token: str | None = None, reference_type: str | None = None,
                           reference_id: str | None = None) -> JSONResponse:
    items, token = await runtime.transcribes.list(identity.customer_id, page_size, page_token,
                                                  reference_type=reference_type, reference_id=reference_id)
    return JSONResponse({"result": [serialize.transcribe(t) for t in items], "next_page_token": token})


@router.get("/transcribes/{transcribe_id}", response_model=TranscribeManagerTranscribe)
async def get_transcribe(transcribe_id: str, identity: IdentityDep, runtime: RuntimeDep) -> JSONResponse:
    return JSONResponse(serialize.transcribe(await runtime.transcribes.get(identity.customer_id, transcribe_id)))


@router.post("/transcribes/{transcribe_id}/stop", response_model=TranscribeManagerTranscribe)
async def stop_transcribe(transcribe_id: str, identity: ManagerDep, runtime: RuntimeDep) -> JSONResponse:
    """The utterance in progress is finalized, then the transcribe is ``done``."""
    return JSONResponse(await runtime.pods.route("transcribe", transcribe_id, "transcribes.stop",
                                                 customer_id=identity.customer_id, transcribe_id=transcribe_id))


@router.delete("/transcribes/{transcribe_id}", response_model=TranscribeManagerTranscribe)
async def delete_transcribe(transcribe_id: str, identity: ManagerDep, runtime: RuntimeDep) -> JSONResponse:
    return JSONResponse(await runtime.pods.route("transcribe", transcribe_id, "transcribes.delete",
                                                 customer_id=identity.customer_id, transcribe_id=transcribe_id))


@router.get("/transcripts", response_model=Page[TranscribeManagerTranscript])
async def list_transcripts(identity: IdentityDep, runtime: RuntimeDep, transcribe_id: str | None = None,
                           page_size: PageSize = None, page_token: str | None = None) -> JSONResponse:
    """The transcripts of one transcribe, newest first (``transcribe_id`` required)."""
    items, token = await runtime.transcribes.list_transcripts(identity.customer_id, transcribe_id, page_size,
                                                              page_token)
    return JSONResponse({"result": [serialize.transcript(t) for t in items], "next_page_token": token})
