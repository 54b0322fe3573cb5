"""NATS event bus (scale-out): events are JSON on subjects ``voipbin.events.<customer>.<resource>.<id>``.

Every process connected to the same NATS server sees every event published by any of them
(core NATS, at most once: live fan-out only; webhooks get their durability from the outbox).
"""

from __future__ import annotations

import nats
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription

from voipbin.events.protocol import Handler
from voipbin.events.model import Event
from voipbin.events.topics import TopicFilter, event_subject, parse_topic

log = structlog.get_logger(__name__)


class _NatsSubscription:
    def __init__(self, sub: NatsSubscription) -> None:
        self._sub: NatsSubscription | None = sub

    async def unsubscribe(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            try:
                await sub.unsubscribe()
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
        return _NatsSubscription(sub)

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
        nc, self._nc = self._nc, None
        if nc is not None and not nc.is_closed:
            try:
                await nc.drain()
            except Exception:
                await nc.close()
