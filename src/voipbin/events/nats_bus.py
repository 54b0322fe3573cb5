"""NATS event bus (scale-out): events are JSON on subjects ``voipbin.events.<customer>.<resource>.<id>``.

Every process connected to the same NATS server sees every event published by any of them
(core NATS, at most once: live fan-out only; webhooks get their durability from the outbox).
Request/reply (commands to one pod) uses core NATS requests: a subject nobody serves is answered
"no responders" by the server at once (NATS 2.2+, headers on), so a dead pod fails fast.
"""

from __future__ import annotations

import asyncio
from typing import Any

import nats
import nats.errors
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription

from voipbin.events.protocol import Handler, NoResponder, RequestHandler
from voipbin.events.model import Event
from voipbin.events.topics import TopicFilter, event_subject, parse_topic

log = structlog.get_logger(__name__)


class _NatsSubscription:
    def __init__(self, sub: NatsSubscription, nc: Client) -> None:
        self._sub: NatsSubscription | None = sub
        self._nc = nc

    async def unsubscribe(self) -> None:
        """Unsubscribe; returns once the server knows (a request sent after this finds no responder here)."""
        sub, self._sub = self._sub, None
        if sub is not None:
            try:
                await sub.unsubscribe()
                await self._nc.flush()
            except Exception:  # connection already closed
                log.debug("nats unsubscribe failed", exc_info=True)


class NatsBus:
    """:class:`~voipbin.events.protocol.EventBus` over a NATS server (``nats://host:port``, comma-separated
    for a cluster). ``start`` connects (raises on an unreachable server); the client reconnects on its own.
    """

    def __init__(self, url: str, *, name: str = "voipbin") -> None:
        self.url = url
        self._name = name
        self._nc: Client | None = None
        self._requests: set[asyncio.Task[Any]] = set()  # requests being answered (see ``serve``)

    async def start(self) -> None:
        if self._nc is None:
            self._nc = await nats.connect(servers=self.url.split(","), name=self._name,
                                          max_reconnect_attempts=-1, reconnect_time_wait=1, connect_timeout=5)

    def _client(self) -> Client:
        if self._nc is None:
            raise RuntimeError("NatsBus.start() has not been awaited")
        return self._nc

    async def publish(self, event: Event) -> None:
        await self._client().publish(event_subject(event), event.to_json())

    async def subscribe(self, pattern: str, handler: Handler) -> _NatsSubscription:
        topic_filter = parse_topic(pattern, allow_any_scope_id=True)
        nc = self._client()
        sub = await nc.subscribe(topic_filter.subject(), cb=self._callback(topic_filter, handler))
        await nc.flush()  # the server knows the interest before we return: no event published later is missed
        return _NatsSubscription(sub, nc)

    @property
    def max_payload(self) -> int:
        """The largest message the server accepts, in bytes (its ``max_payload``: 1 MiB by default)."""
        return int(self._client().max_payload)

    async def serve(self, subject: str, handler: RequestHandler, *, queue: str = "") -> _NatsSubscription:
        """Answer requests on ``subject``; each runs in its own task (one slow command does not hold
        back the next one: the client runs a subscription's callbacks one after the other). With a
        ``queue`` group name, each request goes to one of the group's subscribers (load sharing)."""
        nc = self._client()

        async def answer(msg: Msg) -> None:
            try:
                reply = await handler(msg.data)
            except Exception:
                log.exception("request handler failed", subject=msg.subject)
                return  # the requester times out
            if msg.reply:
                await msg.respond(reply)

        async def on_message(msg: Msg) -> None:
            task = asyncio.get_running_loop().create_task(answer(msg))
            self._requests.add(task)
            task.add_done_callback(self._requests.discard)

        sub = await nc.subscribe(subject, queue=queue, cb=on_message)
        await nc.flush()
        return _NatsSubscription(sub, nc)

    async def request(self, subject: str, payload: bytes, timeout: float) -> bytes:
        """The reply; NoResponder when nobody serves ``subject``, TimeoutError after ``timeout`` seconds."""
        try:
            msg = await self._client().request(subject, payload, timeout=timeout)
        except nats.errors.NoRespondersError as exc:
            raise NoResponder(subject) from exc
        except nats.errors.TimeoutError as exc:
            raise TimeoutError(f"no reply on {subject} within {timeout}s") from exc
        return bytes(msg.data)

    @staticmethod
    def _callback(topic_filter: TopicFilter, handler: Handler):  # type: ignore[no-untyped-def]
        async def on_message(msg: Msg) -> None:
            try:
                event = Event.from_json(msg.data)
            except Exception:
                log.warning("dropping malformed event", subject=msg.subject)
                return
            if topic_filter.match(event) is None:  # subjects are a coarse pre-filter (agent scope, tokens)
                return
            try:
                handler(event)
            except Exception:
                log.exception("event handler failed", event_type=event.event_type)

        return on_message

    async def close(self) -> None:
        for task in list(self._requests):
            task.cancel()
        nc, self._nc = self._nc, None
        if nc is not None and not nc.is_closed:
            try:
                await nc.drain()
            except Exception:
                await nc.close()
