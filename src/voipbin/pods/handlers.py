"""The named pod commands (:mod:`voipbin.pods.commands`): each runs the local service method and
returns the JSON body the API answers with, so a route gives the same response whether the
resource is held by this process or by another pod.

Arguments are JSON values: ``customer_id``, the resource id, and the request's fields. Most run
within the default deadline; those in :data:`SLOW` wait on the network or load a model.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from voipbin.ai import serialize as ai_serialize
from voipbin.calls import midcall, talk
from voipbin.calls import serialize as call_serialize
from voipbin.conferences import serialize as conference_serialize
from voipbin.pods.commands import Commands
from voipbin.speakings import serialize as speaking_serialize
from voipbin.transcribes import serialize as transcribe_serialize

if TYPE_CHECKING:
    from voipbin.runtime import Runtime

Json = dict[str, Any]

SLOW = {
    "calls.delete": 45.0, "groupcalls.delete": 45.0,  # wait up to 40 s for the calls to end
    "calls.hold": 35.0,  # a re-INVITE: up to 32 s (Timer B) for the endpoint's answer
    "speakings.create": 30.0, "transcribes.create": 30.0,  # may load a voice or an STT model first
    "conferences.transcribe_start": 30.0, "conferences.delete": 30.0,  # a room releases its participants
}
"""Deadlines (seconds) of the commands that may take longer than ``COMMAND_TIMEOUT_S``."""


def _shaped(shape: Callable[[Any], Json], method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Json]]:
    async def handler(**args: Any) -> Json:
        return shape(await method(**args))

    return handler


def register_handlers(commands: Commands, rt: Runtime) -> None:
    """Register every command that acts on what a pod holds live (calls, speakings, transcribes,
    conferences, AI calls) or starts something live there (a new call, a conference room)."""
    calls, call = rt.calls, call_serialize.call

    async def create_calls(customer_id: str, body: Json) -> Json:
        made, groups = await calls.create_outgoing(customer_id, body)
        return {"calls": [call(c) for c in made], "groupcalls": [call_serialize.groupcall(g) for g in groups]}

    async def hold(customer_id: str, call_id: str, on: bool) -> Any:
        return await midcall.hold(calls, customer_id, call_id, on)

    async def mute(customer_id: str, call_id: str, direction: str | None, on: bool) -> Any:
        return await midcall.mute(calls, customer_id, call_id, direction, on)

    async def moh(customer_id: str, call_id: str, on: bool) -> Any:
        return await midcall.music_on_hold(calls, customer_id, call_id, on)

    async def talk_call(customer_id: str, call_id: str, body: Json) -> Any:
        return await talk.talk(calls, rt.tts, customer_id, call_id, body)

    async def conference_transcribe_start(customer_id: str, conference_id: str, language: str) -> Any:
        await rt.transcribes.create(customer_id, reference_type="confbridge", reference_id=conference_id,
                                    language=language)
        return await rt.conferences.get(customer_id, conference_id)

    async def conference_transcribe_stop(customer_id: str, conference_id: str) -> Any:
        await rt.transcribes.stop_for_conference(customer_id, conference_id)
        return await rt.conferences.get(customer_id, conference_id)

    async def create_speaking(customer_id: str, body: Json) -> Any:
        return await rt.speakings.create(customer_id, **body)

    async def create_transcribe(customer_id: str, body: Json) -> Any:
        return await rt.transcribes.create(customer_id, **body)

    conference, groupcall = conference_serialize.conference, call_serialize.groupcall
    table: dict[str, Callable[..., Awaitable[Any]]] = {
        "calls.create": create_calls,
        "calls.hangup": _shaped(call, calls.hangup),
        "calls.delete": _shaped(call, calls.delete),
        "calls.hold": _shaped(call, hold),
        "calls.mute": _shaped(call, mute),
        "calls.moh": _shaped(call, moh),
        "calls.talk": _shaped(call, talk_call),
        "groupcalls.hangup": _shaped(groupcall, calls.hangup_groupcall),
        "groupcalls.delete": _shaped(groupcall, calls.delete_groupcall),
        "activeflows.stop": _shaped(call_serialize.activeflow, calls.stop_activeflow),
        "activeflows.delete": _shaped(call_serialize.activeflow, calls.delete_activeflow),
        "speakings.create": _shaped(speaking_serialize.speaking, create_speaking),
        "speakings.say": _shaped(speaking_serialize.speaking, rt.speakings.say),
        "speakings.flush": _shaped(speaking_serialize.speaking, rt.speakings.flush),
        "speakings.stop": _shaped(speaking_serialize.speaking, rt.speakings.stop),
        "speakings.delete": _shaped(speaking_serialize.speaking, rt.speakings.delete),
        "transcribes.create": _shaped(transcribe_serialize.transcribe, create_transcribe),
        "transcribes.stop": _shaped(transcribe_serialize.transcribe, rt.transcribes.stop),
        "transcribes.delete": _shaped(transcribe_serialize.transcribe, rt.transcribes.delete),
        "conferences.create": _shaped(conference, rt.conferences.create),
        "conferences.update": _shaped(conference, rt.conferences.update),
        "conferences.delete": _shaped(conference, rt.conferences.delete),
        "conferences.transcribe_start": _shaped(conference, conference_transcribe_start),
        "conferences.transcribe_stop": _shaped(conference, conference_transcribe_stop),
        "conferencecalls.kick": _shaped(conference_serialize.conferencecall, rt.conferences.kick),
        "aicalls.terminate": _shaped(ai_serialize.aicall, rt.ais.terminate),
        "aicalls.delete": _shaped(ai_serialize.aicall, rt.ais.delete),
        "aimessages.send": _shaped(ai_serialize.aimessage, rt.ais.send_message),
    }
    for name, handler in table.items():
        commands.register(name, handler, timeout_s=SLOW.get(name))
