"""``POST /calls/{id}/talk``: speak a text into a live call once, outside its flow.

The text is synthesized by the TTS registry's provider (``provider``/``voice_id`` as in the ``talk``
action) through a speaking's stages (:func:`voipbin.speakings.pipeline.speak_once`) into what the
endpoint hears (the call's outbound mixer), mixed with whatever the flow plays. The request returns at once; the player leaves the mixer when played out (or when
the call ends). 400 for a bad field, 404 for an unknown call, 409 unless the call is answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

import structlog

from voipbin.common.errors import FailedPrecondition, InvalidArgument
from voipbin.speakings.pipeline import speak_once
from voipbin.speech.tts.registry import TtsRegistry
from voipbin.store.models import Call

if TYPE_CHECKING:
    from voipbin.calls.manager import CallManager

log = structlog.get_logger(__name__)

MAX_TEXT_CHARS = 5000
DEFAULT_LANGUAGE = "en-US"


def _text_field(body: dict[str, Any], field: str, default: str = "") -> str:
    value = body.get(field)
    if value is None:
        return default
    if not isinstance(value, str):
        raise InvalidArgument(f"{field} must be a string", field=field)
    return value or default


async def talk(manager: CallManager, tts: TtsRegistry, customer_id: str, call_id: str,
               body: dict[str, Any]) -> Call:
    """Start speaking ``body["text"]`` (1-5000 characters) into the call; returns the call.

    ``language`` (BCP 47, default en-US), ``provider`` and ``voice_id`` are optional. Raises
    InvalidArgument (400) naming the field, NotFound (404), FailedPrecondition (409) when the
    call is not answered or not handled by this process; an unknown or unkeyed provider is the
    registry's 400.
    """
    text = _text_field(body, "text")
    if not text.strip() or len(text) > MAX_TEXT_CHARS:
        raise InvalidArgument(f"text must hold 1-{MAX_TEXT_CHARS} characters", field="text")
    language = _text_field(body, "language", DEFAULT_LANGUAGE)
    provider = _text_field(body, "provider") or None
    voice = _text_field(body, "voice_id") or None
    call = await manager.get(customer_id, call_id)
    media = manager.media_of(call_id)
    if media is None:
        raise FailedPrecondition("the call is not answered (or not handled by this process)", field="id")
    synthesizer = tts.get(provider)
    spawn_talk(speak_once(synthesizer, [media.outbound], text, language=language, voice=voice, wait=False), call_id)
    return call


_talks: set[asyncio.Task[None]] = set()


def spawn_talk(speech: Coroutine[Any, Any, None], call_id: str) -> None:
    """Run a talk's synthesis in the background (its players leave the mixer once played out); a
    failure is one log line (the players were silenced and taken out)."""
    task = asyncio.get_running_loop().create_task(speech)
    _talks.add(task)
    task.add_done_callback(lambda t: _done(t, call_id))


def _done(task: asyncio.Task[None], call_id: str) -> None:
    _talks.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.warning("talk: synthesis failed", call_id=call_id, error=str(task.exception()))
