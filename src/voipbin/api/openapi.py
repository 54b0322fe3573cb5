"""The served ``/openapi.json``: OpenAPI 3.0.3 describing the API as it really answers.

FastAPI writes OpenAPI 3.1 (JSON Schema 2020-12: ``anyOf [..., {"type": "null"}]``, ``const``,
``examples``) with a 422 validation error on every operation and the credentials as plain query
parameters. :func:`install_openapi` replaces the app's ``openapi()`` with a document that:

* is OpenAPI 3.0.3: a nullable value is ``nullable: true`` (unset timestamps are ``null``, the
  documented choice), ``const`` is a one-value ``enum``, ``examples`` a single ``example``;
* declares the credentials as security schemes (``token`` and ``accesskey`` query parameters,
  HTTP Bearer) on every operation that needs one, instead of optional query parameters;
* lists the status codes an operation really answers, each error in the upstream envelope
  (``ErrorResponse``): 400 (never 422: a request that fails validation is a 400), 401 where a
  credential is needed or checked, 403 where an admin or manager permission is, 404, 409 for
  changes, 413 for bodies over the size limit, 429, 500.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from voipbin.api.deps import require_admin, require_manager

OPENAPI_VERSION = "3.0.3"
CREDENTIAL_PARAMS = ("token", "accesskey")
SECURITY = [{"token": []}, {"accesskey": []}, {"bearer": []}]
METHODS = ("get", "put", "post", "delete", "patch")

DESCRIPTION = """\
A self-hostable, VoIPBIN-compatible programmable voice API.

Credentials: a login JWT (`POST /auth/login`, 7 days) as `?token=` or `Authorization: Bearer`; an
accesskey (`POST /v1.0/accesskeys`) only as `?accesskey=`. Any credential present and invalid is a 401
whose message names it, even beside a valid one: a bad `?token=` next to a valid `Authorization: Bearer`
is a 401 `token is invalid`, a bad `?accesskey=` a 401 naming the accesskey.

Errors use the upstream envelope `{"error": {"status", "reason", "message", "request_id", "details"}}`
with a top-level copy of `message`; a request that fails validation is a 400 `INVALID_ARGUMENT` naming
the field (never a 422). Timestamps are ISO 8601 UTC; a moment that has not happened is `null`.
"""

SECURITY_SCHEMES = {
    "token": {"type": "apiKey", "in": "query", "name": "token", "description": "Login JWT (POST /auth/login)"},
    "accesskey": {"type": "apiKey", "in": "query", "name": "accesskey",
                  "description": "Accesskey token (vb_..., POST /v1.0/accesskeys); only as this parameter"},
    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
               "description": "Login JWT as Authorization: Bearer <token>"},
}

ERROR_SCHEMAS: dict[str, Any] = {
    "ErrorBody": {
        "type": "object",
        "required": ["status", "reason", "message", "request_id"],
        "properties": {
            "status": {"type": "string", "enum": [
                "INVALID_ARGUMENT", "UNAUTHENTICATED", "PERMISSION_DENIED", "NOT_FOUND", "ALREADY_EXISTS",
                "FAILED_PRECONDITION", "RESOURCE_EXHAUSTED", "INTERNAL"]},
            "reason": {"type": "string"},
            "message": {"type": "string", "description": "Names the offending field or credential"},
            "request_id": {"type": "string", "description": "Echoed X-Request-Id"},
            "details": {"type": "array", "items": {"type": "object", "additionalProperties": True}},
        },
    },
    "ErrorResponse": {
        "type": "object",
        "required": ["error", "message"],
        "properties": {
            "error": {"$ref": "#/components/schemas/ErrorBody"},
            "message": {"type": "string", "description": "Copy of error.message (read by the upstream clients)"},
        },
    },
}

ERRORS = {
    "400": "Invalid request (INVALID_ARGUMENT): the message names the field",
    "401": "Missing, invalid or expired credential (UNAUTHENTICATED): the message names it",
    "403": "Insufficient permission (PERMISSION_DENIED)",
    "404": "Not found, or another customer's (NOT_FOUND)",
    "409": "State conflict (ALREADY_EXISTS or FAILED_PRECONDITION)",
    "413": "Request body too large (INVALID_ARGUMENT)",
    "429": "Rate limited (RESOURCE_EXHAUSTED), with Retry-After",
    "500": "Internal error (INTERNAL)",
}


def install_openapi(app: FastAPI) -> None:
    """Serve :func:`build_openapi` of ``app`` (built once, on first use) as its OpenAPI document."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI 3.0.3 document of ``app``'s HTTP routes (see the module docstring)."""
    doc = get_openapi(title=app.title, version=app.version, openapi_version=OPENAPI_VERSION,
                      description=DESCRIPTION, routes=app.routes)
    permissions = {(route.path_format, method.lower()): _needs_permission(route)
                   for route in _api_routes(app.routes) for method in route.methods}
    for path, item in doc.get("paths", {}).items():
        for method, operation in item.items():
            if method in METHODS:
                _shape_operation(path, method, operation, permissions.get((path, method), False))
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    schemas.update(ERROR_SCHEMAS)
    components["securitySchemes"] = SECURITY_SCHEMES
    return _to_openapi_30(doc)  # type: ignore[no-any-return]


def _api_routes(routes: Sequence[BaseRoute]) -> Iterator[APIRoute]:
    """The API routes, also inside included routers (newer FastAPI keeps those whole: ``original_router``)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _api_routes(inner.routes)


def _needs_permission(route: APIRoute) -> bool:
    """True when the route depends on the admin or manager permission check (403 possible)."""
    stack = list(route.dependant.dependencies)
    while stack:
        dependency = stack.pop()
        if dependency.call in (require_admin, require_manager):
            return True
        stack.extend(dependency.dependencies)
    return False


def _shape_operation(path: str, method: str, operation: dict[str, Any], needs_permission: bool) -> None:
    params = operation.get("parameters", [])
    secured = any(p.get("in") == "query" and p.get("name") in CREDENTIAL_PARAMS for p in params)
    operation["parameters"] = [p for p in params if not (p.get("in") == "query" and p.get("name") in CREDENTIAL_PARAMS)]
    if not operation["parameters"]:
        del operation["parameters"]
    if secured:
        operation["security"] = SECURITY
    responses = operation.setdefault("responses", {})
    responses.pop("422", None)
    codes = ["400", "429", "500"]
    if secured or path.endswith("/login"):
        codes.append("401")
    if secured:
        codes.append("404")
    if needs_permission:
        codes.append("403")
    if secured and method != "get":
        codes.append("409")
    if "requestBody" in operation:
        codes.append("413")
    for code in sorted(codes):
        responses[code] = {"description": ERRORS[code],
                           "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}


def _to_openapi_30(node: Any) -> Any:
    """JSON Schema 2020-12 constructs of a FastAPI document rewritten as OpenAPI 3.0 schema objects."""
    if isinstance(node, list):
        return [_to_openapi_30(v) for v in node]
    if not isinstance(node, dict):
        return node
    node = {k: _to_openapi_30(v) for k, v in node.items()}
    for key in ("anyOf", "oneOf"):
        options = node.get(key)
        if isinstance(options, list) and any(o == {"type": "null"} for o in options):
            rest = [o for o in options if o != {"type": "null"}]
            del node[key]
            if len(rest) == 1 and "$ref" in rest[0]:
                node["allOf"] = rest
            elif len(rest) == 1:
                node = {**rest[0], **node}
            else:
                node[key] = rest
            node["nullable"] = True
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if "examples" in node and isinstance(node["examples"], list):
        examples = node.pop("examples")
        if examples:
            node["example"] = examples[0]
    if isinstance(node.get("exclusiveMinimum"), (int, float)) and not isinstance(node["exclusiveMinimum"], bool):
        node["minimum"], node["exclusiveMinimum"] = node["exclusiveMinimum"], True
    if isinstance(node.get("exclusiveMaximum"), (int, float)) and not isinstance(node["exclusiveMaximum"], bool):
        node["maximum"], node["exclusiveMaximum"] = node["exclusiveMaximum"], True
    return node
