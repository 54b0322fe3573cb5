"""Flow business rules: CRUD of stored flows and the ephemeral flow of a call made with inline actions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from voipbin.common.clock import format_ts, utcnow
from voipbin.common.errors import InvalidArgument
from voipbin.events.model import Event, EventPublisher
from voipbin.flows.actions import NIL_UUID, normalize_actions
from voipbin.flows.speech import check_speech
from voipbin.store.models import Flow
from voipbin.store.pagination import paginate
from voipbin.store.records import owned, soft_delete

if TYPE_CHECKING:
    from voipbin.speech.stt.registry import SttRegistry
    from voipbin.speech.tts.registry import TtsRegistry


def serialize(f: Flow) -> dict[str, Any]:
    """The ``FlowManagerFlow`` shape."""
    return {
        "id": f.id, "customer_id": f.customer_id, "type": f.type, "name": f.name, "detail": f.detail,
        "persist": f.persist, "actions": f.actions, "on_complete_flow_id": NIL_UUID,
        "tm_create": format_ts(f.tm_create), "tm_update": format_ts(f.tm_update), "tm_delete": format_ts(f.tm_delete),
    }


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidArgument(f"{key} must be a string", field=key)
    return value


class FlowService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], bus: EventPublisher, *,
                 tts: TtsRegistry | None = None, stt: SttRegistry | None = None) -> None:
        self._sessions = sessions
        self._bus = bus
        self._tts = tts
        self._stt = stt

    async def validate_actions(self, actions: Any, field: str = "actions") -> list[dict[str, Any]]:
        """Normalized ``actions`` whose ``talk``/``transcribe_start`` languages a configured engine
        serves (when the service has the speech registries). Raises InvalidArgument (400) naming
        the field (``actions[0].option.language``)."""
        normalized = normalize_actions(actions, field)
        if self._tts is not None and self._stt is not None:
            normalized = await check_speech(normalized, tts=self._tts, stt=self._stt, field=field)
        return normalized

    async def create(self, customer_id: str, body: dict[str, Any], *, persist: bool = True) -> Flow:
        """A flow from ``{name, detail, actions}``; actions are validated (400 naming the action)."""
        actions = await self.validate_actions(body.get("actions"))
        row = Flow(customer_id=customer_id, name=_text(body, "name"), detail=_text(body, "detail"),
                   actions=actions, persist=persist)
        async with self._sessions() as db, db.begin():
            db.add(row)
        if persist:
            await self._publish(row, "flow_created")
        return row

    async def list(self, customer_id: str, page_size: int | None, page_token: str | None
                   ) -> tuple[Sequence[Flow], str]:
        async with self._sessions() as db:
            stmt = select(Flow).where(Flow.customer_id == customer_id, Flow.tm_delete.is_(None),
                                      Flow.persist.is_(True))
            return await paginate(db, stmt, Flow, page_size, page_token)

    async def get(self, customer_id: str, flow_id: str) -> Flow:
        async with self._sessions() as db:
            return await owned(db, Flow, flow_id, customer_id, what="flow")

    async def update(self, customer_id: str, flow_id: str, body: dict[str, Any]) -> Flow:
        actions = await self.validate_actions(body["actions"]) if "actions" in body else None
        async with self._sessions() as db, db.begin():
            row = await owned(db, Flow, flow_id, customer_id, what="flow")
            if body.get("name") is not None:  # null: unchanged (as every PUT)
                row.name = _text(body, "name")
            if body.get("detail") is not None:
                row.detail = _text(body, "detail")
            if actions is not None:
                row.actions = actions
            row.tm_update = utcnow()
        await self._publish(row, "flow_updated")
        return row

    async def delete(self, customer_id: str, flow_id: str) -> Flow:
        async with self._sessions() as db, db.begin():
            row = await owned(db, Flow, flow_id, customer_id, what="flow")
            soft_delete(row)
        await self._publish(row, "flow_deleted")
        return row

    async def _publish(self, row: Flow, event_type: str) -> None:
        await self._bus.publish(Event(event_type, row.customer_id, "flow", row.id, serialize(row)))
