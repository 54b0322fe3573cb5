"""The stored AIs (``POST``/``GET``/``PUT``/``DELETE /v1.0/ais``, ``AIManagerAI``): each field validated,
the provider key encrypted at rest, each change published in the transaction that stores it.

Request fields (a bad one is an InvalidArgument -> 400 naming it; ``null`` leaves a field unchanged
on ``PUT``):

* ``name`` (required on ``POST``), ``detail``, ``init_prompt``: strings.
* ``type``: ``normal``; ``insight`` is not supported by this deployment.
* ``engine_model`` (required on ``POST``): ``<provider>.<model>``, provider one of
  :data:`~voipbin.ai.options.ENGINE_PROVIDERS`; ``local`` is the offline model and needs no key.
* ``engine_key``: the provider's key, required for every provider but ``local``; write-only
  (stored encrypted, shown as ``"****"`` + its last 4 characters, see :mod:`voipbin.ai.serialize`).
* ``tts_type``: a value of ``AIManagerAITTSType``; served here: ``""`` (the language's default
  engine), ``piper``, ``elevenlabs``, ``google``, ``aws``; the others are "not supported by this
  deployment". ``tts_voice_id``: a string.
* ``stt_type``: ``""`` only (speech is recognized by the local whisper); the spec's other values
  are "not supported by this deployment". ``stt_language``: BCP 47 (canonical casing) or ``""``.
* ``vad_config``: an object of ``confidence`` and ``min_volume`` (0-1), ``start_secs`` and
  ``stop_secs`` (0-30 s), each optional.
* ``tool_names``: a list of ``AIManagerToolName`` values (``["all"]``: every tool).
* ``parameter``: an object. ``rag_id``: empty or the nil UUID (knowledge bases are not served here).
* ``smart_turn_enabled`` (ai_talk then ends turns with :mod:`voipbin.speech.smart_turn`),
  ``auto_aicall_audit_enabled`` (stored and shown): booleans.

Events: resource ``ai``: ``ai_created``, ``ai_updated``, ``ai_deleted`` (bodies never hold the key).

Restart recovery (:mod:`voipbin.calls.recovery`) terminates the aicalls of a dead process and of
the calls it ends with :func:`end_aicalls`, in its own transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from voipbin.ai import serialize
from voipbin.ai.crypto import KeyCipher, hint
from voipbin.ai.options import LOCAL_PROVIDER, NIL_UUID, engine_provider
from voipbin.ai.status import AicallStatus, may_move
from voipbin.common.clock import new_id, utcnow
from voipbin.common.errors import InvalidArgument
from voipbin.events.model import Event, EventPublisher
from voipbin.speech.errors import SpeechConfigError
from voipbin.speech.languages import normalize_language
from voipbin.store.models import Ai, Aicall
from voipbin.store.pagination import paginate
from voipbin.store.records import owned, soft_delete

MAX_NAME = 255
MAX_DETAIL = 10_000
MAX_PROMPT = 100_000
MAX_KEY = 1_000
MAX_VOICE_ID = 128

#: ``AIManagerAITTSType`` values this deployment serves, and the spec's others
TTS_SERVED = ("", "piper", "elevenlabs", "google", "aws")
TTS_SPEC = frozenset({"", "async", "aws", "azure", "cartesia", "deepgram", "elevenlabs", "fish", "google", "groq",
                      "hume", "inworld", "lmnt", "minimax", "neuphonic", "nvidia-riva", "openai", "piper", "playht",
                      "rime", "sarvam", "xtts"})
#: ``AIManagerAISTTType`` values; only "" (the local whisper) is served
STT_SPEC = frozenset({"", "cartesia", "deepgram", "elevenlabs"})
#: ``AIManagerVADConfig``: field -> (low, high)
VAD_RANGES = {"confidence": (0.0, 1.0), "start_secs": (0.0, 30.0), "stop_secs": (0.0, 30.0), "min_volume": (0.0, 1.0)}
#: ``AIManagerToolName``
TOOL_NAMES = frozenset({
    "all", "connect_call", "create_call", "get_aicall_messages", "get_variables", "search_knowledge", "send_email",
    "send_message", "set_variables", "stop_flow", "stop_media", "stop_service", "get_correlation", "get_resource",
    "describe_action", "case_create", "get_contact_interactions", "get_conversation_content", "get_related_cases",
    "get_case_notes",
})
_FIELDS = ("name", "detail", "type", "engine_model", "engine_key", "parameter", "rag_id", "init_prompt", "tts_type",
           "tts_voice_id", "stt_type", "stt_language", "vad_config", "tool_names", "smart_turn_enabled",
           "auto_aicall_audit_enabled")


def _text(value: Any, key: str, limit: int) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidArgument(f"{key} must be a string of at most {limit} characters", field=key)
    return value


def _choice(value: Any, key: str, spec: frozenset[str], served: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in spec:
        raise InvalidArgument(f"{key} must be one of {', '.join(repr(v) for v in sorted(spec))}", field=key)
    if value not in served:
        raise InvalidArgument(f"{key} {value!r} is not supported by this deployment (served: "
                              f"{', '.join(repr(v) for v in served)})", field=key)
    return value


def vad_config(value: Any, key: str = "vad_config") -> dict[str, float]:
    """A validated ``AIManagerVADConfig`` (only the fields given)."""
    if not isinstance(value, dict):
        raise InvalidArgument(f"{key} must be an object", field=key)
    out: dict[str, float] = {}
    for name, number in value.items():
        if name not in VAD_RANGES:
            raise InvalidArgument(f"{key}.{name} is not a VAD setting (one of {', '.join(VAD_RANGES)})",
                                  field=f"{key}.{name}")
        low, high = VAD_RANGES[name]
        if isinstance(number, bool) or not isinstance(number, int | float) or not low <= number <= high:
            raise InvalidArgument(f"{key}.{name} must be a number between {low} and {high}", field=f"{key}.{name}")
        out[name] = float(number)
    return out


def tool_names(value: Any, key: str = "tool_names") -> list[str]:
    """A validated list of ``AIManagerToolName`` values, duplicates dropped, order kept."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"{key} must be a list of tool names", field=key)
    unknown = [v for v in value if v not in TOOL_NAMES]
    if unknown:
        raise InvalidArgument(f"{key}: unknown tool {unknown[0]!r} (one of {', '.join(sorted(TOOL_NAMES))})",
                              field=key)
    return list(dict.fromkeys(value))


class AiRecords:
    """Rows of AIs; reads for the API are owned-or-404."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], bus: EventPublisher, cipher: KeyCipher) -> None:
        self.sessions = sessions
        self._bus = bus
        self.cipher = cipher

    async def create(self, customer_id: str, body: dict[str, Any]) -> Ai:
        """A new AI (``ai_created``); InvalidArgument naming the first bad field."""
        for key in ("name", "engine_model"):
            if body.get(key) is None:
                raise InvalidArgument(f"{key} is required", field=key)
        now = utcnow()
        row = Ai(id=new_id(), customer_id=customer_id, name="", detail="", type="normal", engine_model="",
                 parameter={}, engine_key_encrypted="", engine_key_hint="", rag_id="", init_prompt="", tts_type="",
                 tts_voice_id="", stt_type="", stt_language="", vad_config={}, smart_turn_enabled=False,
                 auto_aicall_audit_enabled=False, tool_names=[], tm_create=now, tm_update=now)
        self._apply(row, body)
        async with self.sessions() as db, db.begin():
            db.add(row)
            await self._publish(row, "ai_created", db)
        return row

    async def update(self, customer_id: str, ai_id: str, body: dict[str, Any]) -> Ai:
        """``PUT /ais/{id}``: the fields present and not null (``ai_updated``)."""
        async with self.sessions() as db, db.begin():
            row = await owned(db, Ai, ai_id, customer_id, what="ai")
            self._apply(row, body)
            row.tm_update = utcnow()
            await self._publish(row, "ai_updated", db)
        return row

    def _apply(self, row: Ai, body: dict[str, Any]) -> None:
        """Set the writable fields present (not null) in ``body`` on ``row``, each validated; then the
        key rule: a provider other than ``local`` needs a key (given now or stored before)."""
        given = {k: body[k] for k in _FIELDS if body.get(k) is not None}
        if "name" in given:
            row.name = _text(given["name"], "name", MAX_NAME)
        if "detail" in given:
            row.detail = _text(given["detail"], "detail", MAX_DETAIL)
        if "init_prompt" in given:
            row.init_prompt = _text(given["init_prompt"], "init_prompt", MAX_PROMPT)
        if "type" in given:
            row.type = _choice(given["type"], "type", frozenset({"normal", "insight"}), ("normal",))
        if "engine_model" in given:
            engine_provider(given["engine_model"], "engine_model")
            row.engine_model = given["engine_model"]
        if "engine_key" in given:
            key = _text(given["engine_key"], "engine_key", MAX_KEY).strip()
            row.engine_key_encrypted = self.cipher.encrypt(key) if key else ""
            row.engine_key_hint = hint(key)
        if "parameter" in given:
            if not isinstance(given["parameter"], dict):
                raise InvalidArgument("parameter must be an object", field="parameter")
            row.parameter = dict(given["parameter"])
        if "rag_id" in given and given["rag_id"] not in ("", NIL_UUID):
            raise InvalidArgument("rag_id: knowledge bases are not supported by this deployment", field="rag_id")
        if "tts_type" in given:
            row.tts_type = _choice(given["tts_type"], "tts_type", TTS_SPEC, TTS_SERVED)
        if "tts_voice_id" in given:
            row.tts_voice_id = _text(given["tts_voice_id"], "tts_voice_id", MAX_VOICE_ID)
        if "stt_type" in given:
            row.stt_type = _choice(given["stt_type"], "stt_type", STT_SPEC, ("",))
        if "stt_language" in given:
            row.stt_language = self._language(given["stt_language"])
        if "vad_config" in given:
            row.vad_config = vad_config(given["vad_config"])
        if "tool_names" in given:
            row.tool_names = tool_names(given["tool_names"])
        for key in ("smart_turn_enabled", "auto_aicall_audit_enabled"):
            if key in given:
                if not isinstance(given[key], bool):
                    raise InvalidArgument(f"{key} must be a boolean", field=key)
                setattr(row, key, given[key])
        provider = engine_provider(row.engine_model, "engine_model")
        if provider != LOCAL_PROVIDER and not row.engine_key_encrypted:
            raise InvalidArgument(f"engine_key is required for the {provider} engine (only local.* needs none)",
                                  field="engine_key")

    @staticmethod
    def _language(value: Any) -> str:
        if value == "":
            return ""
        try:
            return normalize_language(value)
        except SpeechConfigError as exc:
            raise InvalidArgument(f"stt_language: {value!r} is not a valid BCP 47 language tag",
                                  field="stt_language") from exc

    async def get(self, customer_id: str, ai_id: str) -> Ai:
        async with self.sessions() as db:
            return await owned(db, Ai, ai_id, customer_id, what="ai")

    async def list(self, customer_id: str, page_size: int | None, page_token: str | None) -> tuple[Sequence[Ai], str]:
        stmt = select(Ai).where(Ai.customer_id == customer_id, Ai.tm_delete.is_(None))
        async with self.sessions() as db:
            return await paginate(db, stmt, Ai, page_size, page_token)

    async def delete(self, customer_id: str, ai_id: str) -> Ai:
        """Soft delete (``ai_deleted``); aicalls that used it keep their copy of its settings."""
        async with self.sessions() as db, db.begin():
            row = await owned(db, Ai, ai_id, customer_id, what="ai")
            soft_delete(row)
            await self._publish(row, "ai_deleted", db)
        return row

    async def _publish(self, row: Ai, event_type: str, db: AsyncSession) -> None:
        await self._bus.publish(Event(event_type, row.customer_id, "ai", row.id, serialize.ai(row)), session=db)


async def end_aicalls(db: AsyncSession, bus: EventPublisher, where: ColumnElement[bool]) -> int:
    """Restart recovery (:mod:`voipbin.calls.recovery`): in ``db``'s open transaction (events published
    with it), each aicall that ``where`` selects and is not ``terminated`` ends as a terminate does:
    ``terminating`` → ``terminated`` (``tm_end``), ``aicall_status_terminating`` and
    ``aicall_status_terminated`` (only the moves still allowed). Rows are locked (``FOR UPDATE`` on
    PostgreSQL), as the service's own moves lock them. Returns how many ended."""
    now = utcnow()
    rows = (await db.scalars(select(Aicall).where(Aicall.status != AicallStatus.TERMINATED, where)
                             .order_by(Aicall.id).with_for_update())).all()
    for row in rows:
        for status in (AicallStatus.TERMINATING, AicallStatus.TERMINATED):
            await move_aicall(db, bus, row, status, now)
    return len(rows)


async def move_aicall(db: AsyncSession, bus: EventPublisher, row: Aicall, status: AicallStatus, now: datetime) -> None:
    """Move ``row`` (locked in ``db``'s transaction) to ``status`` if its lifecycle allows (``tm_end`` on
    ``terminated``), publishing ``aicall_status_<status>`` with the transaction; else leave it unchanged."""
    if may_move(row.status, status):
        row.status = status
        row.tm_update = now
        if status == AicallStatus.TERMINATED:
            row.tm_end = now
        await bus.publish(Event(f"aicall_status_{status}", row.customer_id, "aicall", row.id,
                                serialize.aicall(row)), session=db)
