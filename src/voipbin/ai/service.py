"""The managed AI's service: stored AIs (:class:`~voipbin.ai.records.AiRecords`, ``records``), aicalls
and aimessages, and the live conversations of this process.

For the ``ai_talk`` turn loop (:mod:`voipbin.ai.agent`): :meth:`AiService.resolve` turns the action's
option into an :class:`AiConfig` (key decrypted); :meth:`~AiService.start_aicall`,
:meth:`~AiService.add_message`, :meth:`~AiService.record_turn`, :meth:`~AiService.end_aicall` store
the conversation; :meth:`~AiService.attach_live` / :meth:`~AiService.detach_live` register the
running loop (a :class:`LiveAi`) so the API can terminate it or inject a message into it.

Aicall ``metadata``: ``prompt_snapshots`` (upstream ``AIManagerPromptSnapshot``, one per AI: the
prompt as sent, flow variables substituted), ``usage`` (token totals: ``prompt_tokens``,
``completion_tokens``, ...), ``turns`` (the last :data:`MAX_TURNS` turns: ``usage``, ``latency_ms``
per stage, ``tm``).

Events: resource ``aicall``: ``aicall_created``, ``aicall_status_<status>`` (e.g.
``aicall_status_progressing``, ``aicall_status_terminated``), ``aicall_deleted``; resource
``aimessage``: ``aimessage_created``. Bodies are the API's shapes (:mod:`voipbin.ai.serialize`).
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from voipbin.ai import serialize
from voipbin.ai.crypto import EngineKeyError, KeyCipher
from voipbin.ai.options import DEFAULT_ENGINE_MODEL, NIL_UUID, engine_provider
from voipbin.ai.records import AiRecords, move_aicall
from voipbin.ai.status import AicallStatus
from voipbin.common.clock import format_ts, new_id, utcnow
from voipbin.common.errors import InvalidArgument, NotFound
from voipbin.events.model import Event, EventPublisher
from voipbin.speech.errors import SpeechConfigError
from voipbin.speech.languages import normalize_language
from voipbin.store.models import Ai, Aicall, Aimessage
from voipbin.store.pagination import paginate
from voipbin.store.records import owned, soft_delete

#: turns kept in an aicall's ``metadata.turns``
MAX_TURNS = 100
#: roles ``POST /aimessages`` may inject
INJECT_ROLES = ("user", "system")
MAX_CONTENT = 10_000


class LiveAi(Protocol):
    """A running conversation (the turn loop) as the API drives it."""

    async def terminate(self) -> None: ...

    def inject(self, role: str, content: str) -> None: ...


@dataclass(frozen=True)
class AiConfig:
    """What one conversation runs with: a stored AI's settings (``ai_id`` set) or an inline one
    (``ai_id`` ""). ``api_key`` is the decrypted provider key ("" for ``local`` engines)."""

    ai_id: str
    engine_model: str
    api_key: str = field(repr=False)
    init_prompt: str
    tts_type: str = ""
    tts_voice_id: str = ""
    stt_type: str = ""
    stt_language: str = ""
    vad_config: dict[str, float] = field(default_factory=dict)
    smart_turn_enabled: bool = False
    tool_names: tuple[str, ...] = ()
    parameter: dict[str, Any] = field(default_factory=dict)


class AiService:
    """AIs, aicalls and aimessages of every customer; the live conversations of this process."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], bus: EventPublisher, *, secret: str,
                 pod_id: str) -> None:
        self.sessions = sessions
        self._bus = bus
        self._pod_id = pod_id
        self.records = AiRecords(sessions, bus, KeyCipher(secret))
        self._live: dict[str, LiveAi] = {}
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    # ------------------------------------------------------------------ for the turn loop

    async def resolve(self, customer_id: str, option: dict[str, Any]) -> AiConfig:
        """The AI an ``ai_talk`` option names: ``assistance_id`` (``assistance_type`` ``ai`` or empty)
        or the deprecated ``ai_id``, else the inline ``initial_prompt`` (``engine_model`` default
        ``local.default``, ``language``, ``tts_voice_id``).

        Raises:
            NotFound: no such AI of this customer (``ai not found``).
            InvalidArgument: ``option.assistance_type`` ``team`` (not supported), a bad field, or a stored
                key that cannot be decrypted.

        An inline AI has no key (``api_key`` ""): a provider other than ``local`` then needs the
        deployment's key for it (the LLM factory refuses, naming ``engine_key``, when there is none).
        """
        if option.get("assistance_type") == "team":
            raise InvalidArgument("option.assistance_type: team is not supported by this deployment",
                                  field="option.assistance_type")
        key = "assistance_id" if option.get("assistance_id") not in (None, "", NIL_UUID) else "ai_id"
        ai_id = option.get(key)
        if ai_id not in (None, "", NIL_UUID):
            return await self._stored_config(customer_id, str(ai_id), f"option.{key}")
        prompt = option.get("initial_prompt")
        if not isinstance(prompt, str) or not prompt:
            raise InvalidArgument("option.assistance_id is required (an AI id), or an inline initial_prompt",
                                  field="option.assistance_id")
        model = option.get("engine_model") or DEFAULT_ENGINE_MODEL
        engine_provider(model, "option.engine_model")
        language = option.get("language") or ""
        try:
            language = normalize_language(language) if language else ""
        except SpeechConfigError as exc:
            raise InvalidArgument(f"option.language: {language!r} is not a valid BCP 47 language tag",
                                  field="option.language") from exc
        return AiConfig(ai_id="", engine_model=model, api_key="", init_prompt=prompt, stt_language=language,
                        tts_voice_id=str(option.get("tts_voice_id") or ""))

    async def check_talk_option(self, customer_id: str, option: dict[str, Any], where: str) -> None:
        """Flow validation's store check of an ``ai_talk`` option (after
        :func:`~voipbin.ai.options.validate_talk_option`): the AI it names is one of ``customer_id``'s.

        Raises:
            InvalidArgument: a missing, deleted or foreign AI, naming ``<where>.assistance_id`` (or
                ``<where>.ai_id``, the field that named it).
        """
        key = "assistance_id" if option.get("assistance_id") not in (None, "", NIL_UUID) else "ai_id"
        ai_id = option.get(key)
        if ai_id in (None, "", NIL_UUID):
            return
        try:
            await self.records.get(customer_id, str(uuid.UUID(str(ai_id))))
        except (ValueError, NotFound) as exc:
            raise InvalidArgument(f"{where}.{key} does not name an AI of this account", field=f"{where}.{key}") from exc

    async def _stored_config(self, customer_id: str, ai_id: str, field_name: str) -> AiConfig:
        try:
            ai_id = str(uuid.UUID(ai_id))
        except ValueError as exc:
            raise InvalidArgument(f"{field_name} must be a UUID", field=field_name) from exc
        row: Ai = await self.records.get(customer_id, ai_id)
        try:
            api_key = self.records.cipher.decrypt(row.engine_key_encrypted) if row.engine_key_encrypted else ""
        except EngineKeyError as exc:
            raise InvalidArgument(f"{field_name}: {exc}", field=field_name) from exc
        return AiConfig(ai_id=row.id, engine_model=row.engine_model, api_key=api_key, init_prompt=row.init_prompt,
                        tts_type=row.tts_type, tts_voice_id=row.tts_voice_id, stt_type=row.stt_type,
                        stt_language=row.stt_language, vad_config=dict(row.vad_config or {}),
                        smart_turn_enabled=bool(row.smart_turn_enabled),
                        tool_names=tuple(row.tool_names or ()), parameter=dict(row.parameter or {}))

    async def start_aicall(self, customer_id: str, config: AiConfig, *, reference_id: str, activeflow_id: str,
                           prompt: str) -> Aicall:
        """A new aicall on call ``reference_id`` (``aicall_created``), then ``progressing``
        (``aicall_status_progressing``); ``prompt`` (as sent to the model) goes into
        ``metadata.prompt_snapshots``."""
        now = utcnow()
        snapshot = {"ai_id": config.ai_id or NIL_UUID, "prompt_history_id": NIL_UUID, "prompt": prompt,
                    "member_id": NIL_UUID}
        row = Aicall(id=new_id(), customer_id=customer_id, assistance_type="ai" if config.ai_id else "",
                     assistance_id=config.ai_id, ai_engine_model=config.engine_model, ai_tts_type=config.tts_type,
                     ai_tts_voice_id=config.tts_voice_id, ai_stt_type=config.stt_type,
                     ai_vad_config=dict(config.vad_config), ai_smart_turn_enabled=config.smart_turn_enabled,
                     parameter=dict(config.parameter), activeflow_id=activeflow_id, reference_type="call",
                     reference_id=reference_id, confbridge_id="", status=AicallStatus.INITIATING,
                     stt_language=config.stt_language, meta={"prompt_snapshots": [snapshot]}, pod_id=self._pod_id,
                     tm_create=now, tm_update=now)
        async with self.sessions() as db, db.begin():
            db.add(row)
            await self._publish(row, "aicall_created", db)
        return await self._move(row.id, AicallStatus.PROGRESSING)

    async def add_message(self, aicall: Aicall, *, role: str, content: str, direction: str,
                          tool_calls: Sequence[dict[str, Any]] = (), tool_call_id: str = "") -> Aimessage:
        """One message of the conversation (``aimessage_created``)."""
        row = Aimessage(id=new_id(), customer_id=aicall.customer_id, aicall_id=aicall.id,
                        activeflow_id=aicall.activeflow_id, active_ai_id=aicall.assistance_id, role=role,
                        content=content, direction=direction, tool_calls=[dict(t) for t in tool_calls],
                        tool_call_id=tool_call_id, tm_create=utcnow())
        async with self.sessions() as db, db.begin():
            db.add(row)
            await self._bus.publish(Event("aimessage_created", row.customer_id, "aimessage", row.id,
                                          serialize.aimessage(row)), session=db)
        return row

    async def record_turn(self, aicall_id: str, *, usage: dict[str, int], latency_ms: dict[str, float]) -> None:
        """Add one turn's token ``usage`` to ``metadata.usage`` and append the turn (usage, stage
        latencies in ms) to ``metadata.turns`` (the last :data:`MAX_TURNS` kept). No event."""
        async with self._lock(aicall_id), self.sessions() as db, db.begin():
            row = await db.get(Aicall, aicall_id, with_for_update=True)
            if row is None:
                return
            meta = dict(row.meta or {})
            totals = dict(meta.get("usage") or {"prompt_tokens": 0, "completion_tokens": 0})
            for name, count in usage.items():
                totals[name] = int(totals.get(name, 0)) + int(count)
            turn = {"usage": dict(usage), "latency_ms": dict(latency_ms), "tm": format_ts(utcnow())}
            meta["usage"] = totals
            meta["turns"] = [*(meta.get("turns") or []), turn][-MAX_TURNS:]
            row.meta = meta
            row.tm_update = utcnow()

    async def end_aicall(self, aicall_id: str) -> Aicall:
        """``terminating`` then ``terminated`` (``tm_end``), each published; an aicall already
        ending or ended is left as it is (so the loop and the API may both call this)."""
        await self._move(aicall_id, AicallStatus.TERMINATING)
        return await self._move(aicall_id, AicallStatus.TERMINATED)

    def attach_live(self, aicall_id: str, live: LiveAi) -> None:
        """Register the running conversation of ``aicall_id`` (terminate and inject reach it)."""
        self._live[aicall_id] = live

    def detach_live(self, aicall_id: str) -> None:
        self._live.pop(aicall_id, None)

    # ------------------------------------------------------------------ API: aicalls

    async def get_aicall(self, customer_id: str, aicall_id: str) -> Aicall:
        async with self.sessions() as db:
            return await owned(db, Aicall, aicall_id, customer_id, what="aicall")

    async def list_aicalls(self, customer_id: str, page_size: int | None, page_token: str | None
                           ) -> tuple[Sequence[Aicall], str]:
        stmt = select(Aicall).where(Aicall.customer_id == customer_id, Aicall.tm_delete.is_(None))
        async with self.sessions() as db:
            return await paginate(db, stmt, Aicall, page_size, page_token)

    async def terminate(self, customer_id: str, aicall_id: str) -> Aicall:
        """``POST /aicalls/{id}/terminate``: the live conversation (if on this process) stops, the aicall
        ends (``terminating``, ``terminated``). An aicall already terminated is returned as it is."""
        await self.get_aicall(customer_id, aicall_id)
        live = self._live.get(aicall_id)
        if live is not None:
            await live.terminate()
        return await self.end_aicall(aicall_id)

    async def delete(self, customer_id: str, aicall_id: str) -> Aicall:
        """``DELETE /aicalls/{id}``: terminated first if it is not, then soft deleted (``aicall_deleted``)."""
        await self.terminate(customer_id, aicall_id)
        async with self._lock(aicall_id), self.sessions() as db, db.begin():
            row = await owned(db, Aicall, aicall_id, customer_id, what="aicall")
            soft_delete(row)
            await self._publish(row, "aicall_deleted", db)
        return row

    # ------------------------------------------------------------------ API: aimessages

    async def list_messages(self, customer_id: str, aicall_id: Any, page_size: int | None, page_token: str | None
                            ) -> tuple[Sequence[Aimessage], str]:
        """Messages of one aicall of this customer, newest first (404 for a foreign or unknown one)."""
        aicall_id = self._aicall_id(aicall_id)
        await self.get_aicall(customer_id, aicall_id)
        stmt = select(Aimessage).where(Aimessage.aicall_id == aicall_id, Aimessage.tm_delete.is_(None))
        async with self.sessions() as db:
            return await paginate(db, stmt, Aimessage, page_size, page_token)

    async def get_message(self, customer_id: str, message_id: str) -> Aimessage:
        async with self.sessions() as db:
            return await owned(db, Aimessage, message_id, customer_id, what="aimessage")

    async def send_message(self, customer_id: str, body: dict[str, Any]) -> Aimessage:
        """``POST /aimessages``: ``role`` ``user`` (answered as if the caller said it) or ``system``
        (joins the history) into the live, ``progressing`` conversation ``aicall_id``. The message is
        stored (``aimessage_created``, direction ``incoming``) before the loop sees it.

        Raises:
            InvalidArgument: a bad field, or the aicall not live on this process / not progressing.
            NotFound: no such aicall of this customer.
        """
        aicall_id = self._aicall_id(body.get("aicall_id"))
        role, content = body.get("role"), body.get("content")
        if role not in INJECT_ROLES:
            raise InvalidArgument(f"role must be one of {', '.join(INJECT_ROLES)}", field="role")
        if not isinstance(content, str) or not content.strip() or len(content) > MAX_CONTENT:
            raise InvalidArgument(f"content must be a non-empty string of at most {MAX_CONTENT} characters",
                                  field="content")
        aicall = await self.get_aicall(customer_id, aicall_id)
        live = self._live.get(aicall_id)
        if live is None or aicall.status != AicallStatus.PROGRESSING:
            raise InvalidArgument(f"aicall_id: the aicall is not in a live conversation (status {aicall.status})",
                                  field="aicall_id")
        message = await self.add_message(aicall, role=role, content=content, direction="incoming")
        live.inject(role, content)
        return message

    @staticmethod
    def _aicall_id(value: Any) -> str:
        if value in (None, ""):
            raise InvalidArgument("aicall_id is required", field="aicall_id")
        try:
            return str(uuid.UUID(str(value)))
        except ValueError as exc:
            raise InvalidArgument("aicall_id must be a UUID", field="aicall_id") from exc

    # ------------------------------------------------------------------ internals

    def _lock(self, aicall_id: str) -> asyncio.Lock:
        return self._locks.setdefault(aicall_id, asyncio.Lock())

    async def _move(self, aicall_id: str, status: AicallStatus) -> Aicall:
        """Move the aicall to ``status`` if its lifecycle allows (``aicall_status_<status>``); else unchanged."""
        async with self._lock(aicall_id), self.sessions() as db, db.begin():
            row = await db.get(Aicall, aicall_id, with_for_update=True)
            assert row is not None
            await move_aicall(db, self._bus, row, status, utcnow())
        return row

    async def _publish(self, row: Aicall, event_type: str, db: AsyncSession) -> None:
        await self._bus.publish(Event(event_type, row.customer_id, "aicall", row.id, serialize.aicall(row)),
                                session=db)
