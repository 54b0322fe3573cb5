"""Topics: ``<scope>:<scope_id>:<resource>:<resource_id>`` and the filters that match them.

A filter is a topic whose tail may be left out or be ``*``:

* ``customer_id:<id>:call:<call_id>``  one call
* ``customer_id:<id>:call:*``          every call of the customer (same as ``customer_id:<id>:call``)
* ``customer_id:<id>``                 every event of the customer
* ``agent_id:<agent_id>:queuecall``    events about the agent's own resources

Matching is segment-wise (``customer_id:<id>:call`` does not match a ``callrecording`` resource).
Resource aliases (:data:`RESOURCE_ALIASES`): ``transcription`` names the ``transcribe`` resource
(seed 001 subscribes to ``customer_id:<id>:transcription:*``).
The bus also accepts ``*`` as the scope id (every customer); client subscriptions may not.
Events travel on NATS as subjects ``voipbin.events.<customer_id>.<resource>.<resource_id>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from voipbin.events.model import Event

SCOPE_CUSTOMER = "customer_id"
SCOPE_AGENT = "agent_id"
SCOPES = (SCOPE_CUSTOMER, SCOPE_AGENT)
WILDCARD = "*"
SUBJECT_PREFIX = "voipbin.events"
ALL_EVENTS = f"{SCOPE_CUSTOMER}:{WILDCARD}"
RESOURCE_ALIASES = {"transcription": "transcribe"}
"""Resource names clients use -> the resource events are published under."""
_SUBJECT_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]")
_MAX_TOPIC_LEN = 512


class InvalidTopic(ValueError):
    """A topic string that is not ``<scope>:<scope_id>[:<resource>[:<resource_id>]]``."""


@dataclass(frozen=True, slots=True)
class TopicFilter:
    """A parsed subscription topic. ``resource``/``resource_id`` of ``None`` match anything."""

    scope: str
    scope_id: str
    resource: str | None = None
    resource_id: str | None = None

    def match(self, event: Event) -> str | None:
        """The event's topic this filter matches (customer or agent topic), else None."""
        if self.resource is not None and self.resource != event.resource:
            return None
        if self.resource_id is not None and self.resource_id != event.resource_id:
            return None
        if self.scope == SCOPE_CUSTOMER:
            if self.scope_id in (WILDCARD, event.customer_id):
                return event.topic
            return None
        if self.scope_id in event.agent_ids:
            return event.agent_topic(self.scope_id)
        if self.scope_id == WILDCARD and event.agent_ids:
            return event.agent_topic(event.agent_ids[0])
        return None

    def subject(self) -> str:
        """The NATS subject (with ``*``/``>`` wildcards) carrying every event this filter can match."""
        if self.scope != SCOPE_CUSTOMER or (self.scope_id == WILDCARD and self.resource is None
                                            and self.resource_id is None):
            return f"{SUBJECT_PREFIX}.>"
        parts = [self.scope_id, self.resource, self.resource_id]
        return ".".join([SUBJECT_PREFIX] + [WILDCARD if p in (None, WILDCARD) else subject_token(p) for p in parts])

    def __str__(self) -> str:
        parts = [self.scope, self.scope_id]
        if self.resource is not None or self.resource_id is not None:
            parts.append(self.resource or WILDCARD)
        if self.resource_id is not None:
            parts.append(self.resource_id)
        return ":".join(parts)


def parse_topic(text: str, *, allow_any_scope_id: bool = False) -> TopicFilter:
    """Parse a topic filter; ``*`` in the resource or resource id position means "any".

    Raises InvalidTopic naming the problem (unknown scope, empty segment, too many segments,
    ``*`` as scope id unless ``allow_any_scope_id``).
    """
    if not isinstance(text, str) or not text or len(text) > _MAX_TOPIC_LEN:
        raise InvalidTopic("topic must be a non-empty string of at most 512 characters")
    parts = text.split(":")
    if not 2 <= len(parts) <= 4:
        raise InvalidTopic(f"topic {text!r} must be <scope>:<scope_id>[:<resource>[:<resource_id>]]")
    if any(not p or p != p.strip() for p in parts):
        raise InvalidTopic(f"topic {text!r} has an empty segment")
    scope, scope_id, *rest = parts
    if scope not in SCOPES:
        raise InvalidTopic(f"topic scope must be customer_id or agent_id, not {scope!r}")
    if scope_id == WILDCARD and not allow_any_scope_id:
        raise InvalidTopic("topic scope id must be an id, not '*'")
    resource = RESOURCE_ALIASES.get(rest[0], rest[0]) if rest and rest[0] != WILDCARD else None
    resource_id = rest[1] if len(rest) > 1 and rest[1] != WILDCARD else None
    return TopicFilter(scope, scope_id, resource, resource_id)


def subject_token(value: str) -> str:
    """``value`` made safe as one NATS subject token (ids and resource names pass unchanged)."""
    return _SUBJECT_UNSAFE.sub("_", value) or "_"


def event_subject(event: Event) -> str:
    """``voipbin.events.<customer_id>.<resource>.<resource_id>``."""
    return ".".join((SUBJECT_PREFIX, subject_token(event.customer_id), subject_token(event.resource),
                     subject_token(event.resource_id)))
