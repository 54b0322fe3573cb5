"""A route class that runs our routes' dependencies without FastAPI's generic per-request solver.

FastAPI (0.16x) solves a route's dependencies on every request by walking its ``Dependant`` tree and,
for each node, classifying the callable, computing a cache key, and validating four parameter lists
(path, query, header, cookie) even when they are empty: ~40 % of the CPU of a cached
``GET /v1.0/extensions/{id}`` went there for three small ``async def`` dependencies (issue 21).

:class:`LeanRoute` keeps FastAPI for everything that is not per request (the signature is read by
FastAPI as usual, so the OpenAPI document, the ``Dependant`` and the stock handler are unchanged) and,
for a route whose shape allows it, compiles the dependency tree once into a plan that runs the same
calls in the same order:

* the route's sub-dependencies, depth first, each ``async def`` called once per request (FastAPI's
  ``use_cache``), before the route's own parameters are validated (so a missing credential is a 401
  before a bad ``page_size`` is a 400, as with FastAPI);
* a ``str`` query parameter with a ``str`` default is read from the query string as FastAPI reads it
  (the last value of a repeated name, the default when absent); a ``str`` path parameter is taken as
  matched; any other path or query parameter is validated by FastAPI's own
  ``request_params_to_args``, and its errors raise the same ``RequestValidationError``;
* the endpoint is awaited and the ``Response`` it returns is the response.

A route falls back to FastAPI's handler, whole, when it has a body, header or cookie parameters,
``BackgroundTasks``/``Response``/``SecurityScopes`` parameters, a generator or sync dependency or
endpoint, security-scheme dependencies, an endpoint not annotated to return a ``Response``. Routes are added to the app with
:func:`add_routes`, never through ``include_router(..., dependencies=...)``: dependencies given at
inclusion are not part of the route's own ``Dependant``.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import request_params_to_args
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


@dataclass(frozen=True)
class _Call:
    """One dependency of the plan: ``call(**kwargs)`` where each kwarg is the value of a sub-call
    (by index in the plan), the request, or a plain ``str`` query parameter (name, default)."""

    call: Callable[..., Awaitable[Any]]
    from_calls: tuple[tuple[str, int], ...]
    request_param: str | None
    str_queries: tuple[tuple[str, str, str], ...]  # (argument, query name, default)


@dataclass(frozen=True)
class _Plan:
    calls: tuple[_Call, ...]  # in the order FastAPI resolves them (depth first, dependencies before dependents)
    endpoint_args: tuple[tuple[str, int], ...]  # endpoint argument <- value of calls[i]
    request_param: str | None
    str_paths: tuple[str, ...]  # str path parameters passed as matched
    str_queries: tuple[tuple[str, str, str], ...]
    validated: Dependant  # the remaining path/query parameters, validated by FastAPI


def _is_plain_str(field: Any) -> bool:
    info = field.field_info
    return (info.annotation is str and not info.metadata and info.validation_alias is None
            and field.config is None)


def _str_queries(dependant: Dependant) -> tuple[tuple[tuple[str, str, str], ...], list[Any]] | None:
    """Plain ``str`` query parameters with a ``str`` default, and the rest; None when the rest may not
    be validated here (only the route itself may have them)."""
    plain, rest = [], []
    for field in dependant.query_params:
        default = field.field_info.default
        if _is_plain_str(field) and isinstance(default, str):
            plain.append((field.name, field.alias, default))
        else:
            rest.append(field)
    return tuple(plain), rest


def _only_async(call: Any) -> bool:
    return inspect.iscoroutinefunction(call) and not inspect.isasyncgenfunction(call)


def _simple(dependant: Dependant) -> bool:
    """No body, header, cookie, background, response, websocket, security-scope or OAuth parameters."""
    return not (dependant.body_params or dependant.header_params or dependant.cookie_params
                or dependant.background_tasks_param_name or dependant.response_param_name
                or dependant.websocket_param_name or dependant.http_connection_param_name
                or dependant.security_scopes_param_name or dependant.own_oauth_scopes)


def compile_plan(dependant: Dependant) -> _Plan | None:
    """The plan for ``dependant`` (a route's), or None when FastAPI must solve it (module docstring)."""
    if not _simple(dependant) or not _only_async(dependant.call) or not _returns_response(dependant.call):
        return None
    calls: list[_Call] = []
    index: dict[Any, int] = {}  # use_cache: one call per callable and request

    def add(sub: Dependant) -> int | None:
        if sub.use_cache and sub.call in index:
            return index[sub.call]
        if (not _simple(sub) or not _only_async(sub.call) or sub.path_params
                or sub.parent_oauth_scopes):
            return None
        queries, rest = _str_queries(sub)
        if rest:
            return None
        from_calls = args_of(sub)
        if from_calls is None:
            return None
        calls.append(_Call(sub.call, from_calls, sub.request_param_name, queries))  # type: ignore[arg-type]
        index[sub.call] = len(calls) - 1
        return len(calls) - 1

    def args_of(parent: Dependant) -> tuple[tuple[str, int], ...] | None:
        """``parent``'s named dependencies as (argument, index in the plan), adding each to the plan."""
        args = []
        for inner in parent.dependencies:
            i = add(inner)
            if i is None:
                return None
            if inner.name is not None:
                args.append((inner.name, i))
        return tuple(args)

    endpoint_args = args_of(dependant)
    if endpoint_args is None:
        return None
    queries, rest_queries = _str_queries(dependant)
    str_paths = tuple(f.name for f in dependant.path_params if _is_plain_str(f) and f.alias == f.name)
    rest_paths = [f for f in dependant.path_params if f.name not in str_paths]
    return _Plan(tuple(calls), endpoint_args, dependant.request_param_name, str_paths, queries,
                 Dependant(path_params=rest_paths, query_params=rest_queries))


def _returns_response(call: Any) -> bool:
    try:
        returned = typing.get_type_hints(call).get("return")
    except Exception:  # an annotation that does not resolve: let FastAPI handle the route
        return False
    return isinstance(returned, type) and issubclass(returned, Response)


async def _run(plan: _Plan, endpoint: Callable[..., Awaitable[Response]], request: Request) -> Response:
    values: list[Any] = []
    query = request.query_params if plan.str_queries or any(c.str_queries for c in plan.calls) else None
    for step in plan.calls:
        kwargs = {name: values[i] for name, i in step.from_calls}
        if step.request_param:
            kwargs[step.request_param] = request
        for name, alias, default in step.str_queries:
            kwargs[name] = query.get(alias, default)  # type: ignore[union-attr]
        values.append(await step.call(**kwargs))
    kwargs = {name: values[i] for name, i in plan.endpoint_args}
    if plan.request_param:
        kwargs[plan.request_param] = request
    path_params = request.path_params
    for name in plan.str_paths:
        kwargs[name] = path_params[name]
    for name, alias, default in plan.str_queries:
        kwargs[name] = query.get(alias, default)  # type: ignore[union-attr]
    if plan.validated.path_params or plan.validated.query_params:
        path_values, path_errors = request_params_to_args(plan.validated.path_params, path_params)
        query_values, query_errors = request_params_to_args(plan.validated.query_params, request.query_params)
        if path_errors or query_errors:
            raise RequestValidationError(path_errors + query_errors)
        kwargs.update(path_values)
        kwargs.update(query_values)
    return await endpoint(**kwargs)


class LeanRoute(APIRoute):
    """An ``APIRoute`` whose requests run a compiled dependency plan when the route allows one
    (module docstring); FastAPI's own handler otherwise. ``lean`` tells which one a route uses.

    A lean route's ASGI app is the handler and the response, nothing around them: FastAPI wraps each
    request of a route in two ``AsyncExitStack`` (for dependencies with ``yield``, which a plan never
    has) and in Starlette's per-route exception wrapper, which finds the same handlers, in the same
    ``scope``, as the app's ``ExceptionMiddleware`` around every route: an exception raised by a
    dependency or the endpoint gets the same answer from there.
    """

    lean: bool = False

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)  # calls get_route_handler
        if self.lean and self.max_body_size is None:
            handler = self.get_route_handler()

            async def app(scope: Scope, receive: Receive, send: Send) -> None:
                response = await handler(Request(scope, receive, send))
                await response(scope, receive, send)

            self.app = app

    def get_route_handler(self) -> Handler:
        stock = super().get_route_handler()
        plan = compile_plan(self.dependant)
        self.lean = plan is not None
        if plan is None:
            return stock
        endpoint = self.dependant.call

        async def handler(request: Request) -> Response:
            return await _run(plan, endpoint, request)  # type: ignore[arg-type]

        return handler


def add_routes(app: FastAPI, routes: Iterable[BaseRoute]) -> None:
    """Add ``routes`` (a router's, paths already prefixed) to the app's own route list, in order,
    after the API routes added before and ahead of the framework's own pages (``/openapi.json``,
    ``/docs``: plain Starlette routes, which no API path can match, so their place changes no answer).

    Routes are matched one by one in list order. ``include_router`` in FastAPI 0.16x wraps each router
    in a node that matches a request twice (once to select the router, once more to select the route)
    through per-request context keys: ~35 us of a cached GET (issue 21). The routes added here are
    matched once, as ``app.get`` routes are. They were built without the app, so
    ``app.dependency_overrides`` does not apply to them (nothing in the project sets it: tests build
    the services they need).
    """
    listed = app.router.routes
    pages = next((i for i, r in enumerate(listed) if type(r) is Route), len(listed))
    listed[pages:pages] = routes
