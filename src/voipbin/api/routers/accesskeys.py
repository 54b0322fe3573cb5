"""``/v1.0/accesskeys``: long-lived API keys; the token is shown only in the POST response."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from voipbin.api.deps import AdminDep, RuntimeDep
from voipbin.api.routing import LeanRoute
from voipbin.api.schemas import AccesskeyCreate, AccesskeyUpdate, CustomerManagerAccesskey, Page
from voipbin.auth.accesskeys import serialize

router = APIRouter(prefix="/v1.0/accesskeys", tags=["Accesskey"], route_class=LeanRoute)
PageSize = Annotated[int | None, Query()]


@router.post("", response_model=CustomerManagerAccesskey)
async def create(body: AccesskeyCreate, identity: AdminDep, runtime: RuntimeDep) -> JSONResponse:
    key, token = await runtime.accesskeys.create(identity.customer_id, name=body.name, detail=body.detail,
                                                 expire=body.expire)
    return JSONResponse(serialize(key, token))


@router.get("", response_model=Page[CustomerManagerAccesskey])
async def list_(identity: AdminDep, runtime: RuntimeDep, page_size: PageSize = None,
                page_token: str | None = None) -> JSONResponse:
    items, token = await runtime.accesskeys.list(identity.customer_id, page_size, page_token)
    return JSONResponse({"result": [serialize(k) for k in items], "next_page_token": token})


@router.get("/{accesskey_id}", response_model=CustomerManagerAccesskey)
async def get(accesskey_id: str, identity: AdminDep, runtime: RuntimeDep) -> JSONResponse:
    return JSONResponse(serialize(await runtime.accesskeys.get(identity.customer_id, accesskey_id)))


@router.put("/{accesskey_id}", response_model=CustomerManagerAccesskey)
async def update(accesskey_id: str, body: AccesskeyUpdate, identity: AdminDep, runtime: RuntimeDep) -> JSONResponse:
    key = await runtime.accesskeys.update(identity.customer_id, accesskey_id, body.model_dump(exclude_unset=True))
    return JSONResponse(serialize(key))


@router.delete("/{accesskey_id}", response_model=CustomerManagerAccesskey)
async def delete(accesskey_id: str, identity: AdminDep, runtime: RuntimeDep) -> JSONResponse:
    return JSONResponse(serialize(await runtime.accesskeys.delete(identity.customer_id, accesskey_id)))
