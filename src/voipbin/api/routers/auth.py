"""``/auth/login``, ``/auth/signup``, ``/auth/complete-signup`` (seed 003), with the aliases clients use:
``POST /login`` (seed 004) and ``/v1.0/auth/...`` (the upstream spec)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from voipbin.api.deps import RuntimeDep
from voipbin.api.routing import LeanRoute
from voipbin.api.schemas import (
    CompleteSignupRequest, CompleteSignupResponse, LoginRequest, LoginResponse, SignupRequest, SignupResponse,
)

router = APIRouter(tags=["Auth"], route_class=LeanRoute)


def _source(request: Request) -> str:
    return request.client.host if request.client else ""


async def login(body: LoginRequest, request: Request, runtime: RuntimeDep) -> dict[str, str]:
    """JWT valid 7 days. 401 for a wrong username or password (same answer for both); 429 with
    ``Retry-After`` after too many failures for the username or attempts from the client address."""
    token = await runtime.login.login(body.username, body.password, source=_source(request))
    return {"username": body.username, "token": token}


async def signup(body: SignupRequest, request: Request, runtime: RuntimeDep) -> dict[str, str]:
    """200 with a ``temp_token`` ("" when the address cannot be used) and a mailed 6-digit code;
    429 with ``Retry-After`` after too many signups for the address or from the client address."""
    return {"temp_token": await runtime.signup.signup(body.model_dump(exclude_none=True), source=_source(request))}


async def complete_signup(body: CompleteSignupRequest, runtime: RuntimeDep) -> dict[str, object]:
    """400 for a wrong code or expired token; 429 after 5 attempts on one temp_token."""
    customer_id, accesskey = await runtime.signup.complete(body.temp_token, body.code)
    return {"customer_id": customer_id, "accesskey": accesskey}


for _path, _endpoint, _model, _aliases in (
    ("/auth/login", login, LoginResponse, ("/login", "/v1.0/auth/login")),
    ("/auth/signup", signup, SignupResponse, ("/v1.0/auth/signup",)),
    ("/auth/complete-signup", complete_signup, CompleteSignupResponse, ("/v1.0/auth/complete-signup",)),
):
    router.add_api_route(_path, _endpoint, methods=["POST"], response_model=_model)
    for _alias in _aliases:
        router.add_api_route(_alias, _endpoint, methods=["POST"], response_model=_model, include_in_schema=False)
