"""The event bus protocol: what a bus implementation provides and what a subscriber hands it.

Kept apart from :mod:`voipbin.events.bus` (which picks an implementation in ``make_bus``) so the
implementations (:mod:`~voipbin.events.memory`, :mod:`~voipbin.events.nats_bus`) depend on the
protocol only, never on the module that chooses between them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from voipbin.events.model import Event

Handler = Callable[[Event], None]
"""A subscriber: called on the event loop for each matching event; must not block."""

RequestHandler = Callable[[bytes], Awaitable[bytes]]
"""A responder: awaited with a request's payload, returns the reply's payload (see :class:`RequestReply`)."""


class NoResponder(Exception):
    """Nobody serves the subject of a request (on NATS: the server answered "no responders")."""


class Subscription(Protocol):
    """A live subscription; ``unsubscribe`` is idempotent."""

    async def unsubscribe(self) -> None: ...


class EventBus(Protocol):
    """Publish/subscribe of :class:`Event`. ``start`` before use, ``close`` at the end."""

    async def start(self) -> None: ...

    async def publish(self, event: Event) -> None: ...

    async def subscribe(self, pattern: str, handler: Handler) -> Subscription:
        """Call ``handler`` for every event matching ``pattern`` published from now on.

        Raises :class:`~voipbin.events.topics.InvalidTopic` for a malformed pattern.
        """
        ...

    async def close(self) -> None: ...


class RequestReply(Protocol):
    """Request/reply on the same bus (commands to one process, :mod:`voipbin.pods.commands`).

    Subjects are plain dotted names (``voipbin.pods.<pod_id>.commands``), apart from event topics.
    """

    async def serve(self, subject: str, handler: RequestHandler, *, queue: str = "") -> Subscription:
        """Answer every request on ``subject`` with ``await handler(payload)``; requests run concurrently.
        Subscribers sharing a ``queue`` group name share the requests (each goes to one of them)."""
        ...

    async def request(self, subject: str, payload: bytes, timeout: float) -> bytes:
        """The reply of the one responder of ``subject``.

        Raises :class:`NoResponder` when none serves it, TimeoutError when no reply came within
        ``timeout`` seconds."""
        ...
