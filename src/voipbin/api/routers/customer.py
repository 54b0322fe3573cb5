"""``/v1.0/customer``: the caller's own customer (webhook settings, webhook secret, metadata)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from voipbin.api.deps import AdminDep, IdentityDep, RuntimeDep
from voipbin.api.routing import LeanRoute
from voipbin.api.schemas import CustomerManagerCustomer, CustomerMetadata, CustomerUpdate
from voipbin.customers.service import serialize

router = APIRouter(prefix="/v1.0", tags=["Customer"], route_class=LeanRoute)


@router.get("/customer", response_model=CustomerManagerCustomer)
async def get_customer(identity: IdentityDep, runtime: RuntimeDep) -> JSONResponse:
    """The caller's customer (``webhook_secret`` is not shown: rotate it to get a new one)."""
    return JSONResponse(serialize(await runtime.customers.get(identity.customer_id)))


@router.put("/customer", response_model=CustomerManagerCustomer)
async def update_customer(body: CustomerUpdate, identity: AdminDep, runtime: RuntimeDep) -> JSONResponse:
    """Customer admin only (403 otherwise). ``webhook_uri: ""`` stops webhook delivery."""
    customer = await runtime.customers.update(identity.customer_id, body.model_dump(exclude_unset=True))
    return JSONResponse(serialize(customer))


@router.put("/customer/metadata", response_model=CustomerManagerCustomer)
async def update_metadata(body: CustomerMetadata, identity: AdminDep, runtime: RuntimeDep) -> JSONResponse:
    """Customer admin only. ``rtp_debug`` is stored and shown in ``metadata`` (no PCAP capture here)."""
    customer = await runtime.customers.update_metadata(identity.customer_id, body.model_dump())
    return JSONResponse(serialize(customer))


@router.post("/customer/webhook_secret/rotate", response_model=CustomerManagerCustomer)
async def rotate_webhook_secret(identity: AdminDep, runtime: RuntimeDep) -> JSONResponse:
    """Customer admin only. A new ``webhook_secret`` (64 hex digits), shown in this response only;
    webhook deliveries are signed with it from now on (``X-VoIPBIN-Signature``)."""
    customer = await runtime.customers.rotate_webhook_secret(identity.customer_id)
    return JSONResponse(serialize(customer, include_secret=True))
