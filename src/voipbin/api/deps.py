"""Request dependencies: the Runtime, and the caller's Identity from ``?token=``, ``?accesskey=`` or Bearer.

Every dependency here is ``async def``: FastAPI runs a plain ``def`` dependency in the thread pool, a hop
to another thread and back on every request (issue 21: a third of a cached GET's CPU). Keep them async and
free of blocking calls.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from voipbin.auth.accesskeys import TOKEN_PREFIX as ACCESSKEY_PREFIX
from voipbin.auth.identity import PERMISSION_CUSTOMER_ADMIN, PERMISSION_CUSTOMER_MANAGER, Identity
from voipbin.common.errors import PermissionDenied, Unauthenticated
from voipbin.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:
    """The application's Runtime (``app.state.runtime``)."""
    return request.app.state.runtime  # type: ignore[no-any-return]


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def authenticate(runtime: Runtime, token: str | None, accesskey: str | None,
                       authorization: str | None, *, token_may_be_accesskey: bool = False) -> Identity:
    """Resolve one credential. A JWT works as ``token=`` or Bearer; an accesskey only as ``accesskey=``,
    or also as ``token=`` when ``token_may_be_accesskey`` (the WebSocket, as seed 001 connects).

    Raises Unauthenticated (-> 401) when none is given or it is wrong, expired or in the wrong place, or
    when a JWT's agent no longer exists (checked against the store, cached briefly).
    """
    if accesskey:
        return await runtime.accesskeys.authenticate(accesskey)
    if token_may_be_accesskey and token and token.startswith(ACCESSKEY_PREFIX):
        return await runtime.accesskeys.authenticate(token)
    if not token and authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthenticated("Authorization header must be 'Bearer <token>'")
        token = value.strip()
    if not token:
        raise Unauthenticated("credential required: ?token=, ?accesskey= or Authorization: Bearer")
    return await runtime.agents.check(runtime.tokens.verify(token))


async def get_identity(
    request: Request,
    token: Annotated[str, Query(description="JWT from POST /auth/login")] = "",
    accesskey: Annotated[str, Query(description="Accesskey token (vb_...)")] = "",
) -> Identity:
    """The caller (see :func:`authenticate`; an empty parameter counts as absent). The parameters are
    ``str`` with an ``""`` default, not ``str | None``: FastAPI inspects an optional annotation on every
    request, a third of the cost of reading them (issue 21)."""
    runtime: Runtime = request.app.state.runtime
    return await authenticate(runtime, token, accesskey, request.headers.get("authorization"))


IdentityDep = Annotated[Identity, Depends(get_identity)]


async def require_manager(identity: IdentityDep) -> Identity:
    """Admin or manager of the customer, else 403."""
    if not identity.has(PERMISSION_CUSTOMER_ADMIN | PERMISSION_CUSTOMER_MANAGER):
        raise PermissionDenied("customer admin or manager permission required")
    return identity


async def require_admin(identity: IdentityDep) -> Identity:
    """Admin of the customer, else 403."""
    if not identity.has(PERMISSION_CUSTOMER_ADMIN):
        raise PermissionDenied("customer admin permission required")
    return identity


ManagerDep = Annotated[Identity, Depends(require_manager)]
AdminDep = Annotated[Identity, Depends(require_admin)]
