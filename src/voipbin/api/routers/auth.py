"""``/auth/login``, ``/auth/signup``, ``/auth/complete-signup`` (seed 003)."""

from __future__ import annotations

from fastapi import APIRouter

from voipbin.api.deps import RuntimeDep
from voipbin.api.schemas import (
    CompleteSignupRequest, CompleteSignupResponse, LoginRequest, LoginResponse, SignupRequest, SignupResponse,
)

router = APIRouter(prefix="/auth", tags=["Auth"])


@router.post("/login", response_model=LoginResponse)
async def login(body: LoginRequest, runtime: RuntimeDep) -> dict[str, str]:
    """JWT valid 7 days. 401 for a wrong username or password (same answer for both)."""
    token = await runtime.login.login(body.username, body.password)
    return {"username": body.username, "token": token}


@router.post("/signup", response_model=SignupResponse)
async def signup(body: SignupRequest, runtime: RuntimeDep) -> dict[str, str]:
    """Always 200; mails a 6-digit code. ``temp_token`` is "" when the address cannot be used."""
    return {"temp_token": await runtime.signup.signup(body.model_dump(exclude_none=True))}


@router.post("/complete-signup", response_model=CompleteSignupResponse)
async def complete_signup(body: CompleteSignupRequest, runtime: RuntimeDep) -> dict[str, object]:
    """400 for a wrong code or expired token; 429 after 5 attempts on one temp_token."""
    customer_id, accesskey = await runtime.signup.complete(body.temp_token, body.code)
    return {"customer_id": customer_id, "accesskey": accesskey}
