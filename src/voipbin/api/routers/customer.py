"""``/v1.0/customer``: the caller's own customer (webhook settings)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from voipbin.api.deps import AdminDep, IdentityDep, RuntimeDep
from voipbin.api.schemas import CustomerManagerCustomer, CustomerUpdate
from voipbin.customers.service import serialize

router = APIRouter(prefix="/v1.0", tags=["Customer"])


@router.get("/customer", response_model=CustomerManagerCustomer)
async def get_customer(identity: IdentityDep, runtime: RuntimeDep) -> JSONResponse:
    """The caller's customer, including ``webhook_secret`` (only here)."""
    customer = await runtime.customers.get(identity.customer_id)
    return JSONResponse(serialize(customer, include_secret=True))


@router.put("/customer", response_model=CustomerManagerCustomer)
async def update_customer(body: CustomerUpdate, identity: AdminDep, runtime: RuntimeDep) -> JSONResponse:
    """Customer admin only (403 otherwise). ``webhook_uri: ""`` stops webhook delivery."""
    customer = await runtime.customers.update(identity.customer_id, body.model_dump(exclude_unset=True))
    return JSONResponse(serialize(customer))
