"""The ``ai_talk`` flow action's option (``FlowManagerActionOptionAITalk``): shapes only.

:func:`validate_talk_option` is what flow validation runs on ``actions[i].option``; whether the
AI exists and belongs to the account is checked when the action runs
(:meth:`voipbin.ai.service.AiService.resolve`). This module imports nothing of the store, so
flows/ may import it.

Fields: ``assistance_type`` (``ai`` or empty; ``team`` is not supported here) with
``assistance_id`` (a UUID), or the deprecated ``ai_id``; or an inline AI: ``initial_prompt``
with ``engine_model`` (``<provider>.<model>``, default ``local.default``), ``language`` (BCP 47),
``tts_voice_id``; ``duration`` in seconds (0: until the AI or the call ends, at most 24 h).
"""

from __future__ import annotations

import uuid
from typing import Any

from voipbin.common.errors import InvalidArgument
from voipbin.speech.errors import SpeechConfigError
from voipbin.speech.languages import normalize_language

Option = dict[str, Any]

NIL_UUID = "00000000-0000-0000-0000-000000000000"
#: ``engine_model`` providers: ``<provider>.<model>``; ``local`` is the offline model (no key)
ENGINE_PROVIDERS = ("openai", "grok", "gemini", "anthropic", "openai-compatible", "local")
LOCAL_PROVIDER = "local"
DEFAULT_ENGINE_MODEL = "local.default"
MAX_DURATION_S = 24 * 3600


def engine_provider(value: Any, field: str) -> str:
    """The provider of an ``engine_model`` (``openai.gpt-5`` -> ``openai``); InvalidArgument naming
    ``field`` unless it is ``<provider>.<model>`` with a provider of :data:`ENGINE_PROVIDERS`."""
    provider, _, model = value.partition(".") if isinstance(value, str) else ("", "", "")
    if provider not in ENGINE_PROVIDERS or not model:
        raise InvalidArgument(f"{field} must be <provider>.<model> with provider one of "
                              f"{', '.join(ENGINE_PROVIDERS)} (e.g. openai.gpt-5, local.default)", field=field)
    return provider


def _str(option: Option, key: str, where: str) -> str:
    value = option.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidArgument(f"{where}.{key} must be a string", field=f"{where}.{key}")
    return value


def _uuid(option: Option, key: str, where: str) -> str:
    """A UUID in canonical form, "" for missing, empty or the nil UUID."""
    value = option.get(key)
    if value in (None, "", NIL_UUID):
        return ""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError as exc:
        raise InvalidArgument(f"{where}.{key} must be a UUID", field=f"{where}.{key}") from exc


def validate_talk_option(option: Option, where: str) -> Option:
    """The ``ai_talk`` option ``option`` of the action at ``where`` (``actions[3].option``), normalized:
    only the fields given, ids canonical, ``language`` in canonical casing, ``duration`` an int.

    Raises:
        InvalidArgument: a field of the wrong type or form (its name, e.g. ``actions[3].option.ai_id``),
            ``assistance_type`` ``team``, or neither an AI id nor an ``initial_prompt``.
    """
    out: Option = {}
    kind = _str(option, "assistance_type", where)
    if kind == "team":
        raise InvalidArgument(f"{where}.assistance_type: team is not supported by this deployment",
                              field=f"{where}.assistance_type")
    if kind not in ("", "ai"):
        raise InvalidArgument(f"{where}.assistance_type must be ai", field=f"{where}.assistance_type")
    for key in ("assistance_id", "ai_id"):
        if value := _uuid(option, key, where):
            out[key] = value
    for key in ("initial_prompt", "engine_model", "tts_voice_id"):
        if value := _str(option, key, where):
            out[key] = value
    if "engine_model" in out:
        engine_provider(out["engine_model"], f"{where}.engine_model")
    if language := _str(option, "language", where):
        try:
            out["language"] = normalize_language(language)
        except SpeechConfigError as exc:
            raise InvalidArgument(f"{where}.language: {language!r} is not a valid BCP 47 language tag",
                                  field=f"{where}.language") from exc
    if not out.get("assistance_id") and not out.get("ai_id") and not out.get("initial_prompt"):
        raise InvalidArgument(f"{where}.assistance_id is required (an AI id), or an inline initial_prompt",
                              field=f"{where}.assistance_id")
    if kind:
        out["assistance_type"] = kind
    duration = 0 if option.get("duration") is None else option["duration"]
    if isinstance(duration, bool) or not isinstance(duration, int) or not 0 <= duration <= MAX_DURATION_S:
        raise InvalidArgument(f"{where}.duration must be an integer number of seconds between 0 and "
                              f"{MAX_DURATION_S}", field=f"{where}.duration")
    out["duration"] = duration
    return out
