"""``/v1.0/me``: who the credential is (``vn login`` validates a key with it)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from voipbin.api.deps import IdentityDep, RuntimeDep
from voipbin.api.routing import LeanRoute
from voipbin.api.schemas import AgentManagerAgent

router = APIRouter(prefix="/v1.0", tags=["Agent"], route_class=LeanRoute)


@router.get("/me", response_model=AgentManagerAgent)
async def get_me(identity: IdentityDep, runtime: RuntimeDep) -> JSONResponse:
    """The caller's agent; an accesskey answers as an admin agent of its customer (``id`` = the key's id)."""
    return JSONResponse(await runtime.customers.me(identity))
