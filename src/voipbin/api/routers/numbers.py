"""``/v1.0/numbers``: owned E.164 numbers."""

from __future__ import annotations


from fastapi import APIRouter
from fastapi.responses import JSONResponse

from voipbin.api.deps import IdentityDep, ManagerDep, RuntimeDep
from voipbin.api.routing import LeanRoute
from voipbin.api.schemas import NumberCreate, NumberFlowIds, NumberManagerNumber, NumberUpdate, Page, PageSize
from voipbin.numbers.service import serialize

router = APIRouter(prefix="/v1.0/numbers", tags=["Number"], route_class=LeanRoute)


@router.post("", response_model=NumberManagerNumber)
async def create(body: NumberCreate, identity: ManagerDep, runtime: RuntimeDep) -> JSONResponse:
    """400 for a number that is not E.164, or (``serve``: a pool is configured) not one of
    ``GET /v1.0/available_numbers``; without a pool, 409 when the number is already owned."""
    return JSONResponse(serialize(await runtime.numbers.create(identity.customer_id, body.model_dump())))


@router.get("", response_model=Page[NumberManagerNumber])
async def list_(identity: IdentityDep, runtime: RuntimeDep, page_size: PageSize = None,
                page_token: str | None = None) -> JSONResponse:
    items, token = await runtime.numbers.list(identity.customer_id, page_size, page_token)
    return JSONResponse({"result": [serialize(n) for n in items], "next_page_token": token})


@router.get("/{number_id}", response_model=NumberManagerNumber)
async def get(number_id: str, identity: IdentityDep, runtime: RuntimeDep) -> JSONResponse:
    return JSONResponse(serialize(await runtime.numbers.get(identity.customer_id, number_id)))


@router.put("/{number_id}", response_model=NumberManagerNumber)
async def update(number_id: str, body: NumberUpdate, identity: ManagerDep, runtime: RuntimeDep) -> JSONResponse:
    row = await runtime.numbers.update(identity.customer_id, number_id, body.model_dump(exclude_unset=True))
    return JSONResponse(serialize(row))


@router.delete("/{number_id}", response_model=NumberManagerNumber)
async def delete(number_id: str, identity: ManagerDep, runtime: RuntimeDep) -> JSONResponse:
    return JSONResponse(serialize(await runtime.numbers.delete(identity.customer_id, number_id)))


@router.put("/{number_id}/flow_ids", response_model=NumberManagerNumber)
async def update_flow_ids(number_id: str, body: NumberFlowIds, identity: ManagerDep,
                          runtime: RuntimeDep) -> JSONResponse:
    """Both flow ids (400 naming one that is not a UUID)."""
    return JSONResponse(serialize(await runtime.numbers.update(identity.customer_id, number_id, body.model_dump())))
