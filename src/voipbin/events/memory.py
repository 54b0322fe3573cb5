"""In-process event bus (embedded deployment): publish calls every matching subscriber's handler;
request/reply calls the subject's responder directly."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from voipbin.events.protocol import Handler, NoResponder, RequestHandler
from voipbin.events.model import Event
from voipbin.events.topics import ALL_EVENTS, TopicFilter, parse_topic

log = structlog.get_logger(__name__)


class _MemorySubscription:
    def __init__(self, bus: MemoryBus, pattern: TopicFilter, handler: Handler) -> None:
        self._bus = bus
        self.pattern = pattern
        self.handler = handler

    async def unsubscribe(self) -> None:
        self._bus._remove(self)


class _MemoryResponder:
    def __init__(self, bus: MemoryBus, subject: str) -> None:
        self._bus = bus
        self.subject = subject

    async def unsubscribe(self) -> None:
        self._bus._responders.pop(self.subject, None)


class MemoryBus:
    """Synchronous fan-out inside one process (implements :class:`~voipbin.events.protocol.EventBus`
    and :class:`~voipbin.events.protocol.RequestReply`).

    ``publish`` returns after every matching handler has run; a handler must not block.
    """

    def __init__(self) -> None:
        self._subs: list[_MemorySubscription] = []
        self._responders: dict[str, RequestHandler] = {}

    async def start(self) -> None:
        pass

    async def publish(self, event: Event) -> None:
        for sub in list(self._subs):
            if sub.pattern.match(event) is None:
                continue
            try:
                sub.handler(event)
            except Exception:
                log.exception("event handler failed", event_type=event.event_type)

    async def subscribe(self, pattern: str, handler: Handler) -> _MemorySubscription:
        sub = _MemorySubscription(self, parse_topic(pattern, allow_any_scope_id=True), handler)
        self._subs.append(sub)
        return sub

    async def serve(self, subject: str, handler: RequestHandler, *, queue: str = "") -> _MemoryResponder:
        """Answer requests on ``subject`` (one responder per subject: the last one wins; ``queue`` is
        accepted for the protocol and changes nothing in one process)."""
        self._responders[subject] = handler
        return _MemoryResponder(self, subject)

    async def request(self, subject: str, payload: bytes, timeout: float) -> bytes:
        """``await handler(payload)`` of the subject's responder; NoResponder without one, TimeoutError
        after ``timeout`` seconds (the handler is cancelled then)."""
        handler = self._responders.get(subject)
        if handler is None:
            raise NoResponder(subject)
        async with asyncio.timeout(timeout):
            return await handler(payload)

    def subscribe_all(self, handler: Handler) -> Callable[[], None]:
        """Receive every event; returns a function that unsubscribes (synchronous convenience)."""
        sub = _MemorySubscription(self, parse_topic(ALL_EVENTS, allow_any_scope_id=True), handler)
        self._subs.append(sub)
        return lambda: self._remove(sub)

    def queue(self) -> tuple[asyncio.Queue[Event], Callable[[], None]]:
        """A queue receiving every event from now on, and its unsubscribe function (for tests/tools)."""
        q: asyncio.Queue[Event] = asyncio.Queue()
        return q, self.subscribe_all(q.put_nowait)

    def _remove(self, sub: _MemorySubscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)

    async def close(self) -> None:
        self._subs.clear()
        self._responders.clear()
