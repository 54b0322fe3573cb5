"""structlog set-up: console output for people, JSON lines for machines; errors that never stall.

Every record is one line. An exception is rendered as ``error="Type: message"`` plus
``traceback="file.py:12 in f < file.py:30 in g ..."``: at most :data:`MAX_TRACEBACK_FRAMES` frames,
innermost first, without source lines or local variables (issue 14: rendering a rich traceback with
locals took up to 15 s on the event loop, and printed token fragments). Credentials are scrubbed from
messages, and values of credential-named fields are never printed.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from types import TracebackType
from typing import Any

import structlog

MAX_TRACEBACK_FRAMES = 12
MAX_MESSAGE_CHARS = 500
REDACTED = "[redacted]"
SENSITIVE_KEYS = frozenset({"password", "token", "accesskey", "secret", "authorization", "jwt_secret",
                            "webhook_secret", "auth_pass", "trunk_password"})
# query/JSON/header credentials, accesskeys (vb_...), JWTs (three base64url parts, the first {"...)
_CREDENTIAL = re.compile(
    r"(?i)((?:token|accesskey|password|secret|authorization)[\"']?\s*[=:]\s*[\"']?(?:bearer\s+)?)"
    r"[^\s&\"',;}]+"
    r"|vb_[A-Za-z0-9_\-]{4,}"
    r"|eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*")


def scrub(text: str) -> str:
    """``text`` with credential values replaced by ``[redacted]`` and cut to MAX_MESSAGE_CHARS."""
    text = _CREDENTIAL.sub(lambda m: (m.group(1) or "") + REDACTED, text)
    return text if len(text) <= MAX_MESSAGE_CHARS else text[:MAX_MESSAGE_CHARS] + "..."


def _exc_info(value: Any) -> tuple[type[BaseException], BaseException, TracebackType | None] | None:
    if isinstance(value, BaseException):
        return type(value), value, value.__traceback__
    if isinstance(value, tuple) and len(value) == 3 and value[0] is not None:
        return value  # type: ignore[return-value]
    if value:
        info = sys.exc_info()
        return info if info[0] is not None else None  # type: ignore[return-value]
    return None


def bounded_exception(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: ``exc_info`` -> one-line ``error`` and ``traceback`` fields (no locals, no
    source lines: frames come from ``extract_tb(lookup_lines=False)``, so nothing is read from disk)."""
    info = _exc_info(event.pop("exc_info", None))
    event.pop("stack_info", None)
    event.pop("exception", None)
    if info is not None:
        _type, exc, tb = info
        event["error"] = scrub(f"{_type.__name__}: {exc}")
        frames = traceback.StackSummary.extract(traceback.walk_tb(tb), limit=None, lookup_lines=False,
                                                capture_locals=False)[-MAX_TRACEBACK_FRAMES:]
        event["traceback"] = " < ".join(
            f"{f.filename.rsplit('/site-packages/', 1)[-1].rsplit('/src/', 1)[-1]}:{f.lineno} in {f.name}"
            for f in reversed(frames))
    return event


def redact_credentials(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: drop the values of credential-named fields, scrub the message."""
    for key in SENSITIVE_KEYS & event.keys():
        event[key] = REDACTED
    message = event.get("event")
    if isinstance(message, str):
        event["event"] = scrub(message)
    return event


def configure_logging(fmt: str = "console", level: str = "INFO") -> None:
    """Route stdlib and structlog records through one renderer on stderr.

    ``fmt`` is ``console`` (key=value, coloured on a terminal) or ``json`` (one object per line);
    both render exceptions with :func:`bounded_exception`, never with rich tracebacks or locals.
    """
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta, bounded_exception, redact_credentials,
            renderer])
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)


def configure_defaults() -> None:
    """Until :func:`configure_logging` runs (embedded use, tests), structlog's own default would render
    exceptions as rich tracebacks with locals: keep its console output, with bounded exceptions.
    Starts from structlog's defaults (print to stdout), whatever was configured before."""
    structlog.reset_defaults()
    structlog.configure(processors=[
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="%Y-%m-%d %H:%M:%S", utc=False),
        bounded_exception,
        redact_credentials,
        structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback),
    ])


if not structlog.is_configured():
    configure_defaults()


def describe_exception(exc: BaseException) -> dict[str, str]:
    """The ``error`` and ``traceback`` fields of :func:`bounded_exception` for ``exc``, to log an error
    explicitly (one line, bounded) whatever renderer is configured."""
    return bounded_exception(None, "error", {"exc_info": exc})
