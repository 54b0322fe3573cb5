"""Action validation: type and option shapes as the spec's ``FlowManagerActionOption*``.

``normalize_actions`` checks a list of actions at creation time (``POST /calls``, ``POST /flows``)
so a bad action is a 400 naming it (``actions[1].option.duration``), never a crash mid-call.
It fills each action's ``id`` (UUID) and ``next_id`` (the following action, or the nil UUID).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from voipbin.common.errors import InvalidArgument
from voipbin.speech.errors import SpeechConfigError
from voipbin.speech.languages import normalize_language

NIL_UUID = "00000000-0000-0000-0000-000000000000"
MAX_ACTIONS = 1000
MAX_TALK_TEXT = 5000
MAX_DURATION_MS = 24 * 3600 * 1000
HANGUP_REASONS = ("", "normal", "failed", "busy", "cancel", "timeout", "noanswer", "dialout", "amd")
DIRECTIONS = ("in", "out", "both")
GENDERS = ("", "male", "female", "neutral")

# every type of the spec's FlowManagerActionType; only those in VALIDATORS run here
KNOWN_TYPES = frozenset({
    "ai_talk", "ai_summary", "amd", "answer", "beep", "branch", "call", "condition_call_digits",
    "condition_call_status", "condition_datetime", "condition_variable", "confbridge_join", "conference_join",
    "connect", "conversation_send", "digits_receive", "digits_send", "echo", "email_send",
    "external_media_start", "external_media_stop", "fetch", "fetch_flow", "goto", "hangup", "message_send",
    "mute", "play", "queue_join", "recording_start", "recording_stop", "sleep", "stop", "stream_echo", "talk",
    "transcribe_start", "transcribe_stop", "transcribe_recording", "variable_set", "webhook_send",
})

Option = dict[str, Any]


def _int_ms(option: Option, key: str, where: str, *, required: bool, default: int = 0) -> int:
    value = option.get(key)
    if value is None:
        if required:
            raise InvalidArgument(f"{where}.{key} is required (milliseconds)", field=f"{where}.{key}")
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DURATION_MS:
        raise InvalidArgument(f"{where}.{key} must be an integer number of milliseconds between 0 and "
                              f"{MAX_DURATION_MS}", field=f"{where}.{key}")
    return value


def _str(option: Option, key: str, where: str, *, choices: tuple[str, ...] | None = None,
         required: bool = False, default: str = "") -> str:
    value = option.get(key)
    if value is None:
        if required:
            raise InvalidArgument(f"{where}.{key} is required", field=f"{where}.{key}")
        return default
    if not isinstance(value, str):
        raise InvalidArgument(f"{where}.{key} must be a string", field=f"{where}.{key}")
    if choices is not None and value not in choices:
        shown = ", ".join(c for c in choices if c)
        raise InvalidArgument(f"{where}.{key} must be one of {shown}", field=f"{where}.{key}")
    return value


def _language(option: Option, where: str, default: str = "en-US") -> str:
    value = _str(option, "language", where, default=default) or default
    try:
        return normalize_language(value)
    except SpeechConfigError as exc:
        raise InvalidArgument(f"{where}.language: {value!r} is not a valid BCP 47 language tag",
                              field=f"{where}.language") from exc


def _no_option(option: Option, where: str) -> Option:
    return {}


def _talk(option: Option, where: str) -> Option:
    text = _str(option, "text", where, required=True)
    if not text.strip():
        raise InvalidArgument(f"{where}.text must not be empty", field=f"{where}.text")
    if len(text) > MAX_TALK_TEXT:
        raise InvalidArgument(f"{where}.text must be at most {MAX_TALK_TEXT} characters", field=f"{where}.text")
    async_ = option.get("async", False)
    if not isinstance(async_, bool):
        raise InvalidArgument(f"{where}.async must be a boolean", field=f"{where}.async")
    out = {"text": text, "language": _language(option, where),
           "gender": _str(option, "gender", where, choices=GENDERS), "async": async_,
           "digits_handle": _str(option, "digits_handle", where, choices=("", "next"))}
    for extra in ("provider", "voice_id"):
        if extra in option:
            out[extra] = _str(option, extra, where)
    return out


def _play(option: Option, where: str) -> Option:
    urls = option.get("stream_urls")
    if not isinstance(urls, list) or not urls or not all(isinstance(u, str) and u for u in urls):
        raise InvalidArgument(f"{where}.stream_urls must be a non-empty list of URLs",
                              field=f"{where}.stream_urls")
    for url in urls:
        if not url.startswith(("http://", "https://", "file://")):
            raise InvalidArgument(f"{where}.stream_urls: {url!r} must be an http(s):// or file:// URL",
                                  field=f"{where}.stream_urls")
    return {"stream_urls": list(urls)}


def _sleep(option: Option, where: str) -> Option:
    return {"duration": _int_ms(option, "duration", where, required=True)}


def _echo(option: Option, where: str) -> Option:
    return {"duration": _int_ms(option, "duration", where, required=False, default=180_000)}


def _hangup(option: Option, where: str) -> Option:
    out = {"reason": _str(option, "reason", where, choices=HANGUP_REASONS) or "normal"}
    ref = option.get("reference_id")
    if ref not in (None, ""):
        try:
            out["reference_id"] = str(uuid.UUID(str(ref)))
        except ValueError as exc:
            raise InvalidArgument(f"{where}.reference_id must be a UUID", field=f"{where}.reference_id") from exc
    return out


def _transcribe_start(option: Option, where: str) -> Option:
    out = {"language": _language(option, where),
           "direction": _str(option, "direction", where, choices=DIRECTIONS, default="both") or "both"}
    if option.get("provider"):
        out["provider"] = _str(option, "provider", where)
    return out


VALIDATORS: dict[str, Callable[[Option, str], Option]] = {
    "answer": _no_option,
    "talk": _talk,
    "play": _play,
    "sleep": _sleep,
    "echo": _echo,
    "hangup": _hangup,
    "transcribe_start": _transcribe_start,
    "transcribe_stop": _no_option,
}


def normalize_actions(actions: Any, field: str = "actions") -> list[dict[str, Any]]:
    """Validated copies of ``actions`` with ``id``/``next_id`` filled; raises InvalidArgument (-> 400)."""
    if not isinstance(actions, list) or not actions:
        raise InvalidArgument(f"{field} must be a non-empty list of actions", field=field)
    if len(actions) > MAX_ACTIONS:
        raise InvalidArgument(f"{field} may hold at most {MAX_ACTIONS} actions", field=field)
    out: list[dict[str, Any]] = []
    for i, action in enumerate(actions):
        where = f"{field}[{i}]"
        if not isinstance(action, dict):
            raise InvalidArgument(f"{where} must be an object", field=where)
        kind = action.get("type")
        if not isinstance(kind, str) or not kind:
            raise InvalidArgument(f"{where}.type is required", field=f"{where}.type")
        if kind not in KNOWN_TYPES:
            raise InvalidArgument(f"{where}.type: unknown action type {kind!r}", field=f"{where}.type")
        if kind not in VALIDATORS:
            raise InvalidArgument(f"{where}.type: action {kind!r} is not supported by this deployment",
                                  field=f"{where}.type")
        option = action.get("option") or {}
        if not isinstance(option, dict):
            raise InvalidArgument(f"{where}.option must be an object", field=f"{where}.option")
        action_id = action.get("id") or str(uuid.uuid4())
        try:
            action_id = str(uuid.UUID(str(action_id)))
        except ValueError as exc:
            raise InvalidArgument(f"{where}.id must be a UUID", field=f"{where}.id") from exc
        out.append({"id": action_id, "next_id": NIL_UUID, "type": kind,
                    "option": VALIDATORS[kind](option, f"{where}.option")})
    for current, following in zip(out, out[1:], strict=False):
        current["next_id"] = following["id"]
    if len({a["id"] for a in out}) != len(out):
        raise InvalidArgument(f"{field}: action ids must be unique", field=field)
    return out
