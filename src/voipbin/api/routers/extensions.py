"""``/v1.0/extensions``: SIP accounts softphones register to."""

from __future__ import annotations


from fastapi import APIRouter
from fastapi.responses import JSONResponse

from voipbin.api.deps import IdentityDep, ManagerDep, RuntimeDep
from voipbin.api.routing import LeanRoute
from voipbin.api.schemas import ExtensionCreate, ExtensionUpdate, Page, PageSize, RegistrarManagerExtension
from voipbin.extensions.service import serialize

router = APIRouter(prefix="/v1.0/extensions", tags=["Extension"], route_class=LeanRoute)


@router.post("", response_model=RegistrarManagerExtension)
async def create(body: ExtensionCreate, identity: ManagerDep, runtime: RuntimeDep) -> JSONResponse:
    """400 naming a missing name/detail/extension/password; 409 when ``extension`` exists."""
    return JSONResponse(serialize(await runtime.extensions.create(identity.customer_id, body.model_dump())))


@router.get("", response_model=Page[RegistrarManagerExtension])
async def list_(identity: IdentityDep, runtime: RuntimeDep, page_size: PageSize = None,
                page_token: str | None = None) -> JSONResponse:
    items, token = await runtime.extensions.list(identity.customer_id, page_size, page_token)
    return JSONResponse({"result": await runtime.extensions.views(items), "next_page_token": token})


@router.get("/{extension_id}", response_model=RegistrarManagerExtension)
async def get(extension_id: str, identity: IdentityDep, runtime: RuntimeDep) -> JSONResponse:
    """The extension, with ``registered`` and ``contacts`` (its SIP bindings) as documented additions."""
    return JSONResponse(await runtime.extensions.view(identity.customer_id, extension_id))


@router.put("/{extension_id}", response_model=RegistrarManagerExtension)
async def update(extension_id: str, body: ExtensionUpdate, identity: ManagerDep,
                 runtime: RuntimeDep) -> JSONResponse:
    row = await runtime.extensions.update(identity.customer_id, extension_id, body.model_dump(exclude_unset=True))
    return JSONResponse(serialize(row))


@router.delete("/{extension_id}", response_model=RegistrarManagerExtension)
async def delete(extension_id: str, identity: ManagerDep, runtime: RuntimeDep) -> JSONResponse:
    return JSONResponse(serialize(await runtime.extensions.delete(identity.customer_id, extension_id)))


@router.post("/{extension_id}/direct-hash-regenerate", response_model=RegistrarManagerExtension)
async def regenerate_direct_hash(extension_id: str, identity: ManagerDep, runtime: RuntimeDep) -> JSONResponse:
    """A new ``direct_hash``."""
    return JSONResponse(serialize(await runtime.extensions.regenerate_direct_hash(identity.customer_id, extension_id)))
