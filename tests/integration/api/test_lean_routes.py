"""``api.routing.LeanRoute`` answers as FastAPI's own handler does (issue 21): the same status and body
for the same requests on two copies of one app, one with stock ``APIRoute`` routes and one with lean
ones; dependencies run once per request and before the route's own parameters are validated."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel

from voipbin.api.app import create_app
from voipbin.api.routing import LeanRoute, add_routes

CALLS: Counter[str] = Counter()


async def caller(request: Request, token: Annotated[str, Query()] = "", other: Annotated[str, Query()] = "x") -> str:
    CALLS["caller"] += 1
    if not token:
        raise HTTPException(401, "token required")
    return f"{token}/{other}/{request.method}"


async def admin(who: Annotated[str, Depends(caller)]) -> str:
    CALLS["admin"] += 1
    if not who.startswith("admin"):
        raise HTTPException(403, "admin required")
    return who


class Body(BaseModel):
    name: str


def router(route_class: type[APIRoute]) -> APIRouter:
    r = APIRouter(prefix="/v1", route_class=route_class)

    @r.get("/items/{item_id}")
    async def get(item_id: str, who: Annotated[str, Depends(caller)], boss: Annotated[str, Depends(admin)],
                  page_size: Annotated[int | None, Query()] = None, tag: str = "") -> JSONResponse:
        return JSONResponse({"id": item_id, "who": who, "boss": boss, "page_size": page_size, "tag": tag})

    @r.get("/numbers/{n}")
    async def number(n: int, request: Request, limit: Annotated[int, Query(ge=1)] = 10) -> JSONResponse:
        return JSONResponse({"n": n, "limit": limit, "path": request.url.path})

    @r.post("/items")
    async def create(body: Body, who: Annotated[str, Depends(caller)]) -> JSONResponse:
        return JSONResponse({"name": body.name, "who": who})

    return r


def make_app(route_class: type[APIRoute]) -> FastAPI:
    app = FastAPI()

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"errors": [{"loc": list(e["loc"]), "type": e["type"]} for e in exc.errors()]},
                            status_code=400)

    add_routes(app, router(route_class).routes)
    return app


REQUESTS = [
    ("GET", "/v1/items/a1?token=admin1"),
    ("GET", "/v1/items/a%20b?token=admin1&other=y&tag=t&page_size=5"),
    ("GET", "/v1/items/a1?token=x&token=admin2"),  # the last value of a repeated name
    ("GET", "/v1/items/a1?token=user"),  # 403 from the nested dependency
    ("GET", "/v1/items/a1"),  # 401 before the bad page_size below is looked at
    ("GET", "/v1/items/a1?page_size=many"),
    ("GET", "/v1/items/a1?token=admin1&page_size=many"),  # 400 naming page_size
    ("GET", "/v1/items/a1?token=admin1&page_size="),
    ("GET", "/v1/numbers/7?limit=3"),
    ("GET", "/v1/numbers/seven"),
    ("GET", "/v1/numbers/7?limit=0"),
    ("POST", "/v1/items?token=admin1"),
]


async def answers(app: FastAPI) -> list[tuple[int, Any]]:
    out = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        for method, url in REQUESTS:
            r = await client.request(method, url, json={"name": "n"} if method == "POST" else None)
            out.append((r.status_code, r.json()))
    return out


async def test_lean_routes_answer_as_fastapi_does() -> None:
    lean_app, stock_app = make_app(LeanRoute), make_app(APIRoute)
    lean = await answers(lean_app)
    stock = await answers(stock_app)
    assert lean == stock
    assert [status for status, _ in lean] == [200, 200, 200, 403, 401, 401, 400, 400, 200, 400, 400, 200]
    assert lean[1][1] == {"id": "a b", "who": "admin1/y/GET", "boss": "admin1/y/GET", "page_size": 5, "tag": "t"}


async def test_a_dependency_used_twice_runs_once_per_request() -> None:
    CALLS.clear()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=make_app(LeanRoute)), base_url="http://t") as c:
        assert (await c.get("/v1/items/a?token=admin")).status_code == 200
    assert CALLS == {"caller": 1, "admin": 1}


def test_which_routes_are_lean() -> None:
    routes = {(r.path, *sorted(r.methods)): r for r in router(LeanRoute).routes}
    assert routes["/v1/items/{item_id}", "GET"].lean and routes["/v1/numbers/{n}", "GET"].lean
    assert not routes["/v1/items", "POST"].lean  # a body: FastAPI's handler


@pytest.mark.parametrize("path", ["/v1.0/extensions/{extension_id}", "/v1.0/calls/{call_id}", "/v1.0/extensions"])
def test_the_hot_reads_of_the_api_are_lean(runtime: Any, path: str) -> None:
    app = create_app(runtime)
    [route] = [r for r in app.routes if isinstance(r, APIRoute) and r.path == path and "GET" in r.methods]
    assert isinstance(route, LeanRoute) and route.lean
