"""Flow validation against this process's speech engines (issue 12).

A ``talk`` or ``transcribe_start`` in a language no configured engine serves is a 400 naming the
action's field (``actions[1].option.language``) when the flow is created, never a silent skip
mid-call. A ``talk`` naming no provider whose language the default engine cannot speak gets the
engine that can (``ko-KR`` -> ``provider: espeak`` while the default is piper), so the call
speaks with the engine validation found.
"""

from __future__ import annotations

import asyncio
from typing import Any

from voipbin.common.errors import InvalidArgument
from voipbin.speech.errors import SpeechConfigError
from voipbin.speech.stt.registry import SttRegistry
from voipbin.speech.tts.registry import TtsRegistry

_FIELDS = ("language", "provider", "voice_id")


def _field_of(exc: SpeechConfigError) -> str:
    """The option a speech error names (``"language: ..."`` -> ``language``)."""
    head = str(exc).split(":", 1)[0]
    return head if head in _FIELDS else "language"


async def check_speech(actions: list[dict[str, Any]], *, tts: TtsRegistry, stt: SttRegistry,
                       field: str = "actions") -> list[dict[str, Any]]:
    """Check the ``talk``/``transcribe_start`` actions of normalized ``actions`` (see
    :func:`voipbin.flows.actions.normalize_actions`) against the engines; return them (a ``talk``
    may gain the ``provider`` that speaks its language).

    The registries may load a voice or model: each look-up runs in a thread.
    Raises InvalidArgument (400) naming ``<field>[i].option.<language|provider|voice_id>``.
    """
    out = []
    for i, action in enumerate(actions):
        option = dict(action.get("option") or {})
        where = f"{field}[{i}].option"
        try:
            if action["type"] == "talk":
                synthesizer, _ = await asyncio.to_thread(tts.provider_for, option["language"],
                                                         option.get("provider") or None,
                                                         option.get("voice_id") or None)
                if not option.get("provider") and synthesizer.name != tts.default_provider:
                    option["provider"] = synthesizer.name
            elif action["type"] == "transcribe_start":
                await asyncio.to_thread(stt.provider_for, option["language"], option.get("provider") or None)
        except SpeechConfigError as exc:
            name = _field_of(exc)
            raise InvalidArgument(f"{where}.{exc}", field=f"{where}.{name}") from exc
        out.append({**action, "option": option} if "option" in action else action)
    return out
