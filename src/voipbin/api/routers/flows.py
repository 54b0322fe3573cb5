"""``/v1.0/flows`` and ``/v1.0/activeflows``: stored flows and their executions."""

from __future__ import annotations


from fastapi import APIRouter
from fastapi.responses import JSONResponse

from voipbin.api.deps import IdentityDep, ManagerDep, RuntimeDep
from voipbin.api.routing import LeanRoute
from voipbin.api.schemas import FlowCreate, FlowManagerActiveflow, FlowManagerFlow, FlowUpdate, Page, PageSize
from voipbin.calls import serialize as call_serialize
from voipbin.flows.service import serialize

router = APIRouter(prefix="/v1.0", tags=["Flow"], route_class=LeanRoute)


@router.post("/flows", response_model=FlowManagerFlow)
async def create(body: FlowCreate, identity: ManagerDep, runtime: RuntimeDep) -> JSONResponse:
    """400 naming the first invalid action (``actions[2].option.duration``)."""
    return JSONResponse(serialize(await runtime.flows.create(identity.customer_id, body.model_dump())))


@router.get("/flows", response_model=Page[FlowManagerFlow])
async def list_(identity: IdentityDep, runtime: RuntimeDep, page_size: PageSize = None,
                page_token: str | None = None) -> JSONResponse:
    items, token = await runtime.flows.list(identity.customer_id, page_size, page_token)
    return JSONResponse({"result": [serialize(f) for f in items], "next_page_token": token})


@router.get("/flows/{flow_id}", response_model=FlowManagerFlow)
async def get(flow_id: str, identity: IdentityDep, runtime: RuntimeDep) -> JSONResponse:
    return JSONResponse(serialize(await runtime.flows.get(identity.customer_id, flow_id)))


@router.put("/flows/{flow_id}", response_model=FlowManagerFlow)
async def update(flow_id: str, body: FlowUpdate, identity: ManagerDep, runtime: RuntimeDep) -> JSONResponse:
    row = await runtime.flows.update(identity.customer_id, flow_id, body.model_dump(exclude_unset=True))
    return JSONResponse(serialize(row))


@router.delete("/flows/{flow_id}", response_model=FlowManagerFlow)
async def delete(flow_id: str, identity: ManagerDep, runtime: RuntimeDep) -> JSONResponse:
    return JSONResponse(serialize(await runtime.flows.delete(identity.customer_id, flow_id)))


@router.get("/activeflows", response_model=Page[FlowManagerActiveflow])
async def list_activeflows(identity: IdentityDep, runtime: RuntimeDep, page_size: PageSize = None,
                           page_token: str | None = None) -> JSONResponse:
    items, token = await runtime.calls.list_activeflows(identity.customer_id, page_size, page_token)
    return JSONResponse({"result": [call_serialize.activeflow(a) for a in items], "next_page_token": token})


@router.get("/activeflows/{activeflow_id}", response_model=FlowManagerActiveflow)
async def get_activeflow(activeflow_id: str, identity: IdentityDep, runtime: RuntimeDep) -> JSONResponse:
    """The execution's progress: ``current_action`` and ``executed_actions`` with ``tm_execute``."""
    row = await runtime.calls.get_activeflow(identity.customer_id, activeflow_id)
    return JSONResponse(call_serialize.activeflow(row))


@router.post("/activeflows/{activeflow_id}/stop", response_model=FlowManagerActiveflow)
async def stop_activeflow(activeflow_id: str, identity: ManagerDep, runtime: RuntimeDep) -> JSONResponse:
    """No further action runs (``ended``) and its call is hung up, as at the end of a flow; idempotent."""
    return JSONResponse(await runtime.pods.route("activeflow", activeflow_id, "activeflows.stop",
                                                 customer_id=identity.customer_id, activeflow_id=activeflow_id))


@router.delete("/activeflows/{activeflow_id}", response_model=FlowManagerActiveflow)
async def delete_activeflow(activeflow_id: str, identity: ManagerDep, runtime: RuntimeDep) -> JSONResponse:
    """Stop, then soft-delete (``tm_delete``)."""
    return JSONResponse(await runtime.pods.route("activeflow", activeflow_id, "activeflows.delete",
                                                 customer_id=identity.customer_id, activeflow_id=activeflow_id))
