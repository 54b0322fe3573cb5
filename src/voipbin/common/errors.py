"""Domain errors raised by services; the API maps each to the upstream error envelope.

A service raises one of these with a message naming the offending field; it never imports
FastAPI. ``api/errors.py`` turns them into ``{"error": {"status", "reason", "message", ...}}``.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base class. ``status`` is the upstream status string, ``http_status`` its HTTP code."""

    status = "INTERNAL"
    http_status = 500

    def __init__(self, message: str, *, reason: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.status
        self.field = field


class InvalidArgument(DomainError):
    """Bad request input (-> 400 INVALID_ARGUMENT)."""

    status = "INVALID_ARGUMENT"
    http_status = 400


class Unauthenticated(DomainError):
    """Missing, wrong or expired credential (-> 401 UNAUTHENTICATED)."""

    status = "UNAUTHENTICATED"
    http_status = 401


class PermissionDenied(DomainError):
    """Authenticated but not allowed (-> 403 PERMISSION_DENIED)."""

    status = "PERMISSION_DENIED"
    http_status = 403


class NotFound(DomainError):
    """Unknown id, or another customer's resource (-> 404 NOT_FOUND)."""

    status = "NOT_FOUND"
    http_status = 404


class AlreadyExists(DomainError):
    """Unique key taken (-> 409 ALREADY_EXISTS)."""

    status = "ALREADY_EXISTS"
    http_status = 409


class FailedPrecondition(DomainError):
    """Resource state forbids the operation (-> 409 FAILED_PRECONDITION)."""

    status = "FAILED_PRECONDITION"
    http_status = 409


class ResourceExhausted(DomainError):
    """Rate or attempt limit reached (-> 429 RESOURCE_EXHAUSTED, with Retry-After)."""

    status = "RESOURCE_EXHAUSTED"
    http_status = 429

    def __init__(self, message: str, *, retry_after: int = 60, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after
