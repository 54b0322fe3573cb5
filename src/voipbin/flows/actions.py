"""Action validation: type and option shapes as the spec's ``FlowManagerActionOption*``.

``normalize_actions`` checks a list of actions at creation time (``POST /calls``, ``POST /flows``)
so a bad action is a 400 naming it (``actions[1].option.duration``), never a crash mid-call.
It fills each action's ``id`` (UUID) and ``next_id`` (the following action, or the nil UUID).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from voipbin.ai.options import validate_talk_option
from voipbin.common.errors import InvalidArgument
from voipbin.flows import addresses
from voipbin.speech.errors import SpeechConfigError
from voipbin.speech.languages import normalize_language

NIL_UUID = "00000000-0000-0000-0000-000000000000"
MAX_ACTIONS = 1000
MAX_TALK_TEXT = 5000
MAX_DURATION_MS = 24 * 3600 * 1000
HANGUP_REASONS = ("", "normal", "failed", "busy", "cancel", "timeout", "noanswer", "dialout", "amd")
DIRECTIONS = ("in", "out", "both")
GENDERS = ("", "male", "female", "neutral")
DTMF_KEYS = "0123456789ABCD*#"

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

EMPTY_FLOW_ACTION: dict[str, Any] = {"id": NIL_UUID, "next_id": NIL_UUID, "type": "answer", "option": {}}
"""The call's ``action`` while it runs an empty flow: answered, nothing else, up until hangup."""


def first_action(actions: list[dict[str, Any]]) -> dict[str, Any]:
    """The action a flow starts with; `EMPTY_FLOW_ACTION` (a copy) for an empty flow."""
    return actions[0] if actions else dict(EMPTY_FLOW_ACTION)


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


def _positive_int(option: Option, key: str, where: str, *, default: int, low: int = 0, high: int = 10**9) -> int:
    value = option.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidArgument(f"{where}.{key} must be an integer between {low} and {high}", field=f"{where}.{key}")
    return value


def _uuid(option: Option, key: str, where: str, *, required: bool) -> str:
    value = option.get(key)
    if value in (None, ""):
        if required:
            raise InvalidArgument(f"{where}.{key} is required (an action id of this flow)", field=f"{where}.{key}")
        return ""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError as exc:
        raise InvalidArgument(f"{where}.{key} must be a UUID", field=f"{where}.{key}") from exc


def _digits_receive(option: Option, where: str) -> Option:
    key = _str(option, "key", where)
    if any(k not in DTMF_KEYS for k in key):
        raise InvalidArgument(f"{where}.key must be DTMF keys (0-9, A-D, *, #)", field=f"{where}.key")
    return {"duration": _int_ms(option, "duration", where, required=False, default=5000),
            "length": _positive_int(option, "length", where, default=1, low=1, high=100), "key": key}


def _digits_send(option: Option, where: str) -> Option:
    digits = _str(option, "digits", where, required=True)
    if not digits or len(digits) > 100 or any(d not in DTMF_KEYS for d in digits):
        raise InvalidArgument(f"{where}.digits must be 1-100 keys of 0-9, A-D, *, #", field=f"{where}.digits")
    return {"digits": digits,
            "duration": _positive_int(option, "duration", where, default=250, low=100, high=1000),
            "interval": _positive_int(option, "interval", where, default=100, low=0, high=5000)}


def _goto(option: Option, where: str) -> Option:
    return {"target_id": _uuid(option, "target_id", where, required=True),
            "loop_count": _positive_int(option, "loop_count", where, default=0, low=0, high=MAX_ACTIONS * 100)}


def _branch(option: Option, where: str) -> Option:
    targets = option.get("target_ids") or {}
    if not isinstance(targets, dict):
        raise InvalidArgument(f"{where}.target_ids must be an object of value -> action id",
                              field=f"{where}.target_ids")
    out_targets = {str(k): _uuid(targets, k, f"{where}.target_ids", required=True) for k in targets}
    return {"variable": _str(option, "variable", where) or "voipbin.call.digits",
            "default_target_id": _uuid(option, "default_target_id", where, required=False),
            "target_ids": out_targets}


def _connect(option: Option, where: str) -> Option:
    dests = option.get("destinations")
    try:
        out: Option = {"destinations": addresses.destinations(dests)}
        if option.get("source"):
            out["source"] = addresses.source(option["source"])
    except InvalidArgument as exc:
        raise InvalidArgument(f"{where}.{exc.message}", field=f"{where}.{exc.field}") from exc
    for flag in ("early_media", "relay_reason"):
        value = option.get(flag, False)
        if not isinstance(value, bool):
            raise InvalidArgument(f"{where}.{flag} must be a boolean", field=f"{where}.{flag}")
        out[flag] = value
    out["anonymous"] = _str(option, "anonymous", where, choices=("", "yes", "no", "auto")) or "auto"
    return out


def _conference_join(option: Option, where: str) -> Option:
    value = option.get("conference_id")
    if value in (None, ""):
        raise InvalidArgument(f"{where}.conference_id is required (a conference id)", field=f"{where}.conference_id")
    return {"conference_id": _uuid(option, "conference_id", where, required=True)}


def _confbridge_join(option: Option, where: str) -> Option:
    value = option.get("confbridge_id")
    if value in (None, ""):
        raise InvalidArgument(f"{where}.confbridge_id is required (a conference id)", field=f"{where}.confbridge_id")
    return {"confbridge_id": _uuid(option, "confbridge_id", where, required=True)}


VALIDATORS: dict[str, Callable[[Option, str], Option]] = {
    "answer": _no_option,
    "talk": _talk,
    "play": _play,
    "sleep": _sleep,
    "echo": _echo,
    "hangup": _hangup,
    "transcribe_start": _transcribe_start,
    "transcribe_stop": _no_option,
    "digits_receive": _digits_receive,
    "digits_send": _digits_send,
    "goto": _goto,
    "branch": _branch,
    "connect": _connect,
    "conference_join": _conference_join,
    "confbridge_join": _confbridge_join,
    "ai_talk": validate_talk_option,
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
    ids = {a["id"] for a in out}
    if len(ids) != len(out):
        raise InvalidArgument(f"{field}: action ids must be unique", field=field)
    for i, action in enumerate(out):  # goto/branch targets must be actions of this flow
        opt = action["option"]
        targets = {"target_id": opt.get("target_id", ""), "default_target_id": opt.get("default_target_id", ""),
                   **{f"target_ids.{k}": v for k, v in opt.get("target_ids", {}).items()}}
        for key, target in targets.items():
            if target and target not in ids:
                where = f"{field}[{i}].option.{key}"
                raise InvalidArgument(f"{where}: {target} is not the id of an action in this flow", field=where)
    return out
