"""The upstream error envelope ``{"error": {"status", "reason", "message", "request_id", "details"}}``."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from voipbin.common.errors import DomainError, ResourceExhausted
from voipbin.logging import describe_exception
from voipbin.speech.errors import SpeechConfigError

log = structlog.get_logger(__name__)

HTTP_TO_STATUS = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
    405: "INVALID_ARGUMENT", 409: "FAILED_PRECONDITION", 413: "INVALID_ARGUMENT", 415: "INVALID_ARGUMENT",
    422: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
}


def error_body(request: Request, http_status: int, status: str, message: str, reason: str | None = None,
               details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The envelope, plus a top-level copy of ``message`` (the upstream clients read ``body["message"]``)."""
    return {"error": {
        "status": status, "reason": reason or status, "message": message,
        "request_id": getattr(request.state, "request_id", ""), "details": details or [],
    }, "message": message}


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _validation_message(err: dict[str, Any]) -> str:
    field = _field_name(tuple(err.get("loc", ())))
    kind = err.get("type", "")
    if kind == "missing":
        return f"{field} is required"
    if kind in ("json_invalid", "model_attributes_type", "dict_type") and field == "body":
        return "request body must be a JSON object"
    return f"{field}: {err.get('msg', 'invalid value')}"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        details = [{"field": exc.field}] if exc.field else []
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, ResourceExhausted) else None
        return JSONResponse(error_body(request, exc.http_status, exc.status, exc.message, exc.reason, details),
                            status_code=exc.http_status, headers=headers)

    @app.exception_handler(SpeechConfigError)
    async def _speech_config(request: Request, exc: SpeechConfigError) -> JSONResponse:
        message = str(exc)
        field = message.split(":", 1)[0] if ":" in message else None
        details = [{"field": field}] if field and " " not in field else []
        return JSONResponse(error_body(request, 400, "INVALID_ARGUMENT", message, details=details), status_code=400)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        message = _validation_message(errors[0]) if errors else "invalid request"
        details = [{"field": _field_name(tuple(e.get("loc", ()))), "message": e.get("msg", "")} for e in errors]
        return JSONResponse(error_body(request, 400, "INVALID_ARGUMENT", message, details=details),
                            status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        status = HTTP_TO_STATUS.get(exc.status_code, "INTERNAL" if exc.status_code >= 500 else "INVALID_ARGUMENT")
        return JSONResponse(error_body(request, exc.status_code, status, str(exc.detail)),
                            status_code=exc.status_code, headers=getattr(exc, "headers", None))


async def internal_error(exc: Exception, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer an unhandled exception with a 500 in the envelope, logged as one bounded line (no locals,
    credentials scrubbed): it never stalls the loop (issue 14). Called by the app's request middleware
    (``api.app.RequestMiddleware``) before any response started; unlike an ``Exception`` handler
    (Starlette's ServerErrorMiddleware re-raises it to the server), the error ends here."""
    request = Request(scope)
    if isinstance(exc, UnicodeEncodeError) and "surrogate" in str(exc):
        # JSON may escape a lone UTF-16 surrogate ("\ud800"): valid JSON, no Unicode text, nothing stores it;
        # the failing write rolled back its transaction
        message = "the request holds text that is not valid Unicode (a lone UTF-16 surrogate)"
        await JSONResponse(error_body(request, 400, "INVALID_ARGUMENT", message), status_code=400)(scope, receive, send)
        return
    log.error("unhandled error", method=request.method, path=request.url.path,
              request_id=getattr(request.state, "request_id", ""), **describe_exception(exc))
    await JSONResponse(error_body(request, 500, "INTERNAL", "internal error"), status_code=500)(scope, receive, send)
