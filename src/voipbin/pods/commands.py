"""Commands run on the pod that holds a resource (issue 19): one generic request/reply mechanism.

A live call's media, its speakings and transcribes, a conference's mixed room and an AI
conversation live in the memory of one process, the pod whose ``pod_id`` their rows carry. A
command for one of them (``speakings.say``, ``calls.hangup``, ...) must run there. Every process
registers the same named handlers (:mod:`voipbin.pods.handlers`: each calls the local service
method and returns the JSON the API answers) and serves them on the bus subject
``voipbin.pods.<pod_id>.commands``. :meth:`Commands.run` then

* runs the handler directly (no bus) when the resource is held here or by no pod;
* otherwise sends ``{"name", "args"}`` as a request to the holding pod and waits at most
  ``timeout_s`` (default 5 s; longer for a command registered with its own deadline, one that
  waits on the network or loads a model) for ``{"result": ...}`` or ``{"error": {...}}``.

A domain error raised on the holding pod comes back as :class:`RemoteError` with the same status
string and HTTP code (404, 400, 409, ...) and message, so the API answers as it would locally. A
pod nobody answers for (no responder: it died; or no reply within the deadline) is
:class:`PodUnavailable` (503, "pod <id> that holds call <id> is unavailable"): never a hang.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from voipbin.common.errors import DomainError
from voipbin.events.protocol import NoResponder, RequestReply, Subscription
from voipbin.speech.errors import SpeechConfigError

log = structlog.get_logger(__name__)

COMMAND_TIMEOUT_S = 5.0
"""How long a command waits for the holding pod's reply (seconds) before it is a 503."""

CommandHandler = Callable[..., Awaitable[Any]]
"""A named command: awaited with JSON-safe keyword arguments, returns a JSON-safe result."""


def command_subject(pod_id: str) -> str:
    """The bus subject a pod answers its commands on."""
    return f"voipbin.pods.{pod_id}.commands"


class PodUnavailable(DomainError):
    """The pod that holds a resource does not answer (-> 503 UNAVAILABLE)."""

    status = "UNAVAILABLE"
    http_status = 503


class RemoteError(DomainError):
    """A domain error raised by a command on another pod: same status, HTTP code, message and field."""

    def __init__(self, message: str, *, status: str, http_status: int, reason: str | None = None,
                 field: str | None = None) -> None:
        super().__init__(message, reason=reason, field=field)
        self.status = status
        self.http_status = http_status


def _error(exc: Exception) -> dict[str, Any]:
    """The ``{"error": ...}`` reply of a command that raised ``exc`` (mapped as the API maps it locally)."""
    if isinstance(exc, DomainError):
        return {"message": exc.message, "status": exc.status, "http_status": exc.http_status,
                "reason": exc.reason, "field": exc.field}
    if isinstance(exc, SpeechConfigError):
        return {"message": str(exc), "status": "INVALID_ARGUMENT", "http_status": 400}
    return {"message": f"the command failed on the pod that holds the resource: {type(exc).__name__}",
            "status": "INTERNAL", "http_status": 500}


class Commands:
    """The registry of named command handlers of this pod (``pod_id``), and their routing.

    ``transport`` is the bus's request/reply side; None (a single process, ``memory://``) runs
    every command here. ``start`` serves this pod's subject, ``stop`` ends that.
    """

    def __init__(self, pod_id: str, transport: RequestReply | None, *, timeout_s: float = COMMAND_TIMEOUT_S) -> None:
        self.pod_id = pod_id
        self.timeout_s = timeout_s
        self._transport = transport
        self._handlers: dict[str, CommandHandler] = {}
        self._deadlines: dict[str, float] = {}
        self._serving: Subscription | None = None

    @property
    def routed(self) -> bool:
        """Whether commands may go to other pods (a shared bus)."""
        return self._transport is not None

    def register(self, name: str, handler: CommandHandler, *, timeout_s: float | None = None) -> None:
        """Make ``name`` runnable here and on request from other pods; ``timeout_s``: its own deadline
        (seconds) when it may legitimately take longer than the default (every pod registers the same)."""
        self._handlers[name] = handler
        if timeout_s is not None:
            self._deadlines[name] = timeout_s

    async def start(self) -> None:
        if self._transport is not None and self._serving is None:
            self._serving = await self._transport.serve(command_subject(self.pod_id), self._answer)

    async def stop(self) -> None:
        serving, self._serving = self._serving, None
        if serving is not None:
            await serving.unsubscribe()

    async def run(self, pod_id: str, name: str, *, holds: str, **args: Any) -> Any:
        """Run command ``name`` with ``args`` on pod ``pod_id`` (here when it is this pod or ``""``).

        ``holds`` names the resource for the 503 message (``"call <id>"``). Raises what the handler
        raises (here) or :class:`RemoteError` with its status (there); :class:`PodUnavailable` when
        the pod does not answer within ``timeout_s``."""
        if not pod_id or pod_id == self.pod_id or self._transport is None:
            return await self._handler(name)(**args)
        request = json.dumps({"name": name, "args": args}).encode()
        try:
            reply = await self._transport.request(command_subject(pod_id), request,
                                                  self._deadlines.get(name, self.timeout_s))
        except (NoResponder, TimeoutError) as exc:
            log.warning("pod does not answer a command", pod_id=pod_id, command=name, holds=holds,
                        why="no responder" if isinstance(exc, NoResponder) else "deadline")
            raise PodUnavailable(f"pod {pod_id} that holds {holds} is unavailable",
                                 reason="POD_UNAVAILABLE") from None
        body = json.loads(reply)
        if "error" in body:
            raise RemoteError(**body["error"])
        return body["result"]

    def _handler(self, name: str) -> CommandHandler:
        handler = self._handlers.get(name)
        if handler is None:
            raise LookupError(f"unknown pod command {name!r}")
        return handler

    async def _answer(self, payload: bytes) -> bytes:
        """A request from another pod: run the command here; its error, if any, as ``{"error": ...}``."""
        name = "?"
        try:
            request = json.loads(payload)
            name = str(request["name"])
            body: dict[str, Any] = {"result": await self._handler(name)(**request["args"])}
        except Exception as exc:
            if not isinstance(exc, DomainError | SpeechConfigError):
                log.exception("pod command failed", command=name)
            body = {"error": _error(exc)}
        return json.dumps(body).encode()
