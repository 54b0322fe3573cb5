"""Events: what happened to a resource, published on a bus and fanned out to WebSockets and webhooks.

* :mod:`~voipbin.events.model` - :class:`Event` and the :class:`EventPublisher` seam services use.
* :mod:`~voipbin.events.topics` - ``customer_id:<id>:<resource>[:<resource_id>|:*]`` filters, NATS subjects.
* :mod:`~voipbin.events.protocol` - the :class:`EventBus` protocol; :mod:`~voipbin.events.bus` - ``make_bus(url)``
  (memory | NATS).
* :mod:`~voipbin.events.websocket_hub` - WebSocket connections, subscriptions, bounded fan-out.
* :mod:`~voipbin.events.outbox`, :mod:`~voipbin.events.webhooks`, :mod:`~voipbin.events.retry` -
  durable webhook delivery; :mod:`~voipbin.events.signature` - ``X-VoIPBIN-Signature`` sign/verify.
"""

from voipbin.events.bus import make_bus
from voipbin.events.model import Event, EventPublisher
from voipbin.events.protocol import EventBus

__all__ = ["Event", "EventBus", "EventPublisher", "make_bus"]
