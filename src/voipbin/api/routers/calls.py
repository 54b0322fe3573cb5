"""``/v1.0/calls`` and ``/v1.0/groupcalls``: outgoing calls, their state, hangup.

Commands for a live call run on the pod that holds it, new calls on a media pod (``runtime.pods``,
:mod:`voipbin.pods.router`); reads come from the store on any pod.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse

from voipbin.api.deps import IdentityDep, ManagerDep, RuntimeDep
from voipbin.api.routing import LeanRoute
from voipbin.runtime import Runtime
from voipbin.api.schemas import (
    CallCreate, CallManagerCall, CallManagerGroupcall, CallMute, CallsCreated, CallTalk, GroupcallCreate, Page, PageSize,
)
from voipbin.calls import serialize

router = APIRouter(prefix="/v1.0", tags=["Call"], route_class=LeanRoute)


@router.post("/calls", response_model=CallsCreated)
async def create(identity: ManagerDep, runtime: RuntimeDep,
                 body: Annotated[CallCreate, Body()]) -> JSONResponse:
    """Dial every destination and run ``flow_id`` or the inline ``actions`` on each answered call.

    An ``extension`` destination makes a groupcall ringing every registered contact; its calls
    are listed in ``calls`` as well. 400 for a source number not owned, a bad E.164, an
    unknown extension or flow, or an invalid action.
    """
    payload: dict[str, Any] = body.model_dump(exclude_unset=True)
    return JSONResponse(await runtime.pods.place("calls.create", near=_joined_conference(payload),
                                                 customer_id=identity.customer_id, body=payload))


@router.get("/calls", response_model=Page[CallManagerCall])
async def list_calls(identity: IdentityDep, runtime: RuntimeDep, page_size: PageSize = None,
                     page_token: str | None = None) -> JSONResponse:
    items, token = await runtime.calls.list(identity.customer_id, page_size, page_token)
    return JSONResponse({"result": [serialize.call(c) for c in items], "next_page_token": token})


@router.get("/calls/{call_id}", response_model=CallManagerCall)
async def get_call(call_id: str, identity: IdentityDep, runtime: RuntimeDep) -> JSONResponse:
    return JSONResponse(serialize.call(await runtime.calls.get(identity.customer_id, call_id)))


@router.delete("/calls/{call_id}", response_model=CallManagerCall)
async def delete_call(call_id: str, identity: ManagerDep, runtime: RuntimeDep) -> JSONResponse:
    """Hang up (CANCEL or BYE as the state requires) and delete."""
    return JSONResponse(await _on_call(runtime, "calls.delete", identity.customer_id, call_id))


@router.post("/calls/{call_id}/hangup", response_model=CallManagerCall)
async def hangup_call(call_id: str, identity: ManagerDep, runtime: RuntimeDep) -> JSONResponse:
    """CANCEL before the answer, BYE after; returns the call as it is now (``canceling``/``terminating``)."""
    return JSONResponse(await _on_call(runtime, "calls.hangup", identity.customer_id, call_id))


@router.post("/calls/{call_id}/hold", response_model=CallManagerCall)
async def hold_call(call_id: str, identity: ManagerDep, runtime: RuntimeDep) -> JSONResponse:
    """Hold: the endpoint and the call it is bridged to stop hearing each other (409 unless answered)."""
    return JSONResponse(await _on_call(runtime, "calls.hold", identity.customer_id, call_id, on=True))


@router.delete("/calls/{call_id}/hold", response_model=CallManagerCall)
async def unhold_call(call_id: str, identity: ManagerDep, runtime: RuntimeDep) -> JSONResponse:
    return JSONResponse(await _on_call(runtime, "calls.hold", identity.customer_id, call_id, on=False))


@router.post("/calls/{call_id}/mute", response_model=CallManagerCall)
async def mute_call(call_id: str, identity: ManagerDep, runtime: RuntimeDep,
                    body: Annotated[CallMute | None, Body()] = None) -> JSONResponse:
    """Mute ``direction`` (``in``: the endpoint is not heard, ``out``: it hears nothing, ``both``)."""
    direction = body.direction if body is not None else None
    return JSONResponse(await _on_call(runtime, "calls.mute", identity.customer_id, call_id, direction=direction, on=True))


@router.delete("/calls/{call_id}/mute", response_model=CallManagerCall)
async def unmute_call(call_id: str, identity: ManagerDep, runtime: RuntimeDep,
                      body: Annotated[CallMute | None, Body()] = None) -> JSONResponse:
    """Unmute ``direction`` (all directions without a body)."""
    direction = body.direction if body is not None else None
    return JSONResponse(await _on_call(runtime, "calls.mute", identity.customer_id, call_id, direction=direction,
                                       on=False))


@router.post("/calls/{call_id}/moh", response_model=CallManagerCall)
async def moh_on(call_id: str, identity: ManagerDep, runtime: RuntimeDep) -> JSONResponse:
    """Music on hold: the endpoint hears a generated melody instead of the call."""
    return JSONResponse(await _on_call(runtime, "calls.moh", identity.customer_id, call_id, on=True))


@router.delete("/calls/{call_id}/moh", response_model=CallManagerCall)
async def moh_off(call_id: str, identity: ManagerDep, runtime: RuntimeDep) -> JSONResponse:
    return JSONResponse(await _on_call(runtime, "calls.moh", identity.customer_id, call_id, on=False))


@router.post("/calls/{call_id}/silence", response_model=CallManagerCall)
async def silence_call(call_id: str, identity: ManagerDep, runtime: RuntimeDep) -> JSONResponse:
    """Silence: the call's audio stops both ways (``mute_direction`` ``both``); 409 unless answered."""
    return JSONResponse(await _on_call(runtime, "calls.mute", identity.customer_id, call_id, direction="both", on=True))


@router.delete("/calls/{call_id}/silence", response_model=CallManagerCall)
async def unsilence_call(call_id: str, identity: ManagerDep, runtime: RuntimeDep) -> JSONResponse:
    return JSONResponse(await _on_call(runtime, "calls.mute", identity.customer_id, call_id, direction="both",
                                       on=False))


@router.post("/calls/{call_id}/talk", response_model=CallManagerCall)
async def talk_call(call_id: str, identity: ManagerDep, runtime: RuntimeDep,
                    body: Annotated[CallTalk, Body()]) -> JSONResponse:
    """Speak ``text`` into the call now (mixed with its flow's audio); returns at once. 409 unless answered."""
    return JSONResponse(await _on_call(runtime, "calls.talk", identity.customer_id, call_id, body=body.model_dump()))


@router.post("/groupcalls", response_model=CallManagerGroupcall)
async def create_groupcall(identity: ManagerDep, runtime: RuntimeDep,
                           body: Annotated[GroupcallCreate, Body()]) -> JSONResponse:
    """Ring every registered contact of one extension; the first to answer runs the flow, the others
    are cancelled (``ring_all``, ``hangup_others``). 400 as ``POST /calls``."""
    payload = body.model_dump(exclude_unset=True, exclude={"ring_method", "answer_method"})
    created = await runtime.pods.place("calls.create", near=_joined_conference(payload),
                                       customer_id=identity.customer_id, body=payload)
    return JSONResponse(created["groupcalls"][0])


@router.get("/groupcalls", response_model=Page[CallManagerGroupcall])
async def list_groupcalls(identity: IdentityDep, runtime: RuntimeDep, page_size: PageSize = None,
                          page_token: str | None = None) -> JSONResponse:
    items, token = await runtime.calls.list_groupcalls(identity.customer_id, page_size, page_token)
    return JSONResponse({"result": [serialize.groupcall(g) for g in items], "next_page_token": token})


@router.get("/groupcalls/{groupcall_id}", response_model=CallManagerGroupcall)
async def get_groupcall(groupcall_id: str, identity: IdentityDep, runtime: RuntimeDep) -> JSONResponse:
    return JSONResponse(serialize.groupcall(await runtime.calls.get_groupcall(identity.customer_id, groupcall_id)))


@router.post("/groupcalls/{groupcall_id}/hangup", response_model=CallManagerGroupcall)
async def hangup_groupcall(groupcall_id: str, identity: ManagerDep, runtime: RuntimeDep) -> JSONResponse:
    """Hang up every call of the groupcall; it is ``hangingup`` until they have all ended."""
    return JSONResponse(await runtime.pods.route("groupcall", groupcall_id, "groupcalls.hangup",
                                                 customer_id=identity.customer_id, groupcall_id=groupcall_id))


@router.delete("/groupcalls/{groupcall_id}", response_model=CallManagerGroupcall)
async def delete_groupcall(groupcall_id: str, identity: ManagerDep, runtime: RuntimeDep) -> JSONResponse:
    """Hang up, then soft-delete."""
    return JSONResponse(await runtime.pods.route("groupcall", groupcall_id, "groupcalls.delete",
                                                 customer_id=identity.customer_id, groupcall_id=groupcall_id))


def _joined_conference(payload: dict[str, Any]) -> tuple[str, str] | None:
    """The conference an inline ``conference_join`` action puts the new calls in: they are placed on its pod
    (a conference takes calls of its own pod, :mod:`voipbin.conferences.service`)."""
    for action in payload.get("actions") or []:
        option = action.get("option") if isinstance(action, dict) else None
        if isinstance(option, dict) and action.get("type") in ("conference_join", "confbridge_join"):
            return "conference", str(option.get("conference_id") or option.get("confbridge_id") or "")
    return None


async def _on_call(runtime: Runtime, command: str, customer_id: str, call_id: str, **args: Any) -> Any:
    """Run the call command ``command`` on the pod holding ``call_id``."""
    return await runtime.pods.route("call", call_id, command, customer_id=customer_id, call_id=call_id, **args)
