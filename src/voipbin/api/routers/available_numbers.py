"""``GET /v1.0/available_numbers``: the operator's pool numbers nobody owns (then ``POST /v1.0/numbers``)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from voipbin.api.deps import IdentityDep, RuntimeDep
from voipbin.api.routing import LeanRoute

router = APIRouter(prefix="/v1.0/available_numbers", tags=["Number"], route_class=LeanRoute)


class NumberManagerAvailableNumber(BaseModel):
    number: str
    country: str
    region: str
    postal_code: str
    features: list[str]


class AvailableNumbers(BaseModel):
    result: list[NumberManagerAvailableNumber]


@router.get("", response_model=AvailableNumbers)
async def list_(_identity: IdentityDep, runtime: RuntimeDep, country_code: str | None = None,
                page_size: Annotated[int | None, Query()] = None,
                type: Literal["normal", "virtual"] = "normal") -> JSONResponse:  # noqa: A002 (upstream name)
    """400 without ``country_code`` (normal numbers); virtual numbers are not offered (empty list)."""
    if type == "virtual":
        return JSONResponse({"result": []})
    return JSONResponse({"result": await runtime.numbers.available(country_code, page_size)})
