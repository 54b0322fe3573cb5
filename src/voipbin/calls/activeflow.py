"""The flow executor: runs an activeflow's actions, one after the other, on a call.

Each action type is one coroutine in :data:`EXECUTORS` taking the :class:`ActionRun`. An action
that needs the call answered runs only once the answer is complete (``progressing`` stored and
published); one that cannot run publishes ``activeflow_action_failed`` and the flow goes on. When the
last action finishes, the call is hung up (``normal``), as upstream does. Hangup of the call
cancels the running action. An action may move the cursor (``goto``, ``branch``) by setting
``run.jump_to`` to an action id. An inbound call's flow starts while it rings: ``answer``
answers it, and so does the first action that needs media.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlparse

import httpx
import structlog

from voipbin.calls.hangup import BY_LOCAL, LOCAL_BYE, Hangup
from voipbin.media.players import BufferPlayer, StreamPlayer
from voipbin.media.session import RtpSession
from voipbin.speech.tts.registry import TtsRegistry

if TYPE_CHECKING:
    from voipbin.calls.manager import CallManager, LiveCall


class CallEnded(Exception):
    """The call hung up while an operation waited on it."""

log = structlog.get_logger(__name__)

MAX_PLAY_BYTES = 50 * 1024 * 1024


class TranscribeControl(Protocol):
    """What the ``transcribe_start``/``transcribe_stop`` actions need (implemented by transcribes/)."""

    async def start_for_call(self, customer_id: str, call_id: str, *, language: str, direction: str,
                             provider: str | None) -> None: ...

    async def stop_for_call(self, customer_id: str, call_id: str) -> None: ...


@dataclass
class FlowContext:
    """Services the actions use; built once per process."""

    tts: TtsRegistry
    transcribes: TranscribeControl | None = None
    http: httpx.AsyncClient | None = None


#: actions that run on an inbound call without answering it first
NO_ANSWER_NEEDED = frozenset({"answer", "branch", "connect", "goto", "hangup", "sleep"})


@dataclass
class ActionRun:
    """One action being executed on one call."""

    context: FlowContext
    manager: CallManager
    call: LiveCall
    action: dict[str, Any]
    jump_to: str | None = None  # set by goto/branch: the id of the action to run next
    goto_counts: dict[str, int] | None = None  # per goto action id: times it jumped

    @property
    def option(self) -> dict[str, Any]:
        return self.action.get("option") or {}

    @property
    def media(self) -> RtpSession:
        leg = self.call.leg
        if leg is None or leg.media is None:
            raise RuntimeError("call has no media")
        return leg.media


class ActiveflowRunner:
    def __init__(self, context: FlowContext, manager: CallManager, call: LiveCall) -> None:
        self._context = context
        self._manager = manager
        self._call = call

    async def run(self) -> None:
        """Execute every action, then hang up; a failing action is logged and the flow goes on."""
        async with self._manager._sessions() as session:
            from voipbin.store.models import Activeflow

            af = await session.get(Activeflow, self._call.activeflow_id)
            actions = list(af.actions) if af is not None else []
        index_of = {a["id"]: i for i, a in enumerate(actions)}
        goto_counts: dict[str, int] = {}
        index = 0
        while index < len(actions):
            action = actions[index]
            index += 1
            await self._manager.record_action(self._call, action)
            executor = EXECUTORS.get(action["type"])
            if executor is None:
                await self._manager.action_failed(self._call, action, f"action type {action['type']} is not supported")
                continue
            run = ActionRun(self._context, self._manager, self._call, action, goto_counts=goto_counts)
            try:
                if action["type"] not in NO_ANSWER_NEEDED:
                    await self._manager.answer_incoming(self._call)
                stop = await executor(run)
            except asyncio.CancelledError:
                raise
            except CallEnded:
                return
            except Exception as exc:  # the action could not run: an event says so, the flow goes on
                log.warning("action failed", call_id=self._call.call_id, type=action["type"], error=repr(exc)[:300])
                await self._manager.action_failed(self._call, action, f"{type(exc).__name__}: {exc}")
                continue
            if stop:
                return
            if run.jump_to is not None:
                if run.jump_to not in index_of:
                    log.warning("jump to an unknown action id; flow goes on", target=run.jump_to)
                else:
                    index = index_of[run.jump_to]
        await self._manager.end_call(self._call.call_id, LOCAL_BYE)


# ---------------------------------------------------------------------- executors
# Each returns True when the flow must stop (hangup), else None/False.


async def _answer(run: ActionRun) -> bool:
    await run.manager.answer_incoming(run.call)  # outgoing calls were answered by the far end
    return False


async def _talk(run: ActionRun) -> bool:
    opt = run.option
    synthesizer = run.context.tts.get(opt.get("provider") or None)
    player = StreamPlayer(input_rate_hz=synthesizer.sample_rate)
    run.media.outbound.add(player)
    chunks = synthesizer.synthesize(opt["text"], language=opt.get("language", "en-US"),
                                    voice=opt.get("voice_id") or None)  # bundled voices: one gender each
    task = player.play(chunks, end=True)
    if opt.get("async"):
        return False
    try:
        await task
        await player.wait()  # finished once played out (or flushed)
    finally:
        if not task.done():
            task.cancel()
        run.media.outbound.remove(player)
    return False


async def _play(run: ActionRun) -> bool:
    for url in run.option["stream_urls"]:
        path = await _fetch_audio(run, url)
        try:
            player = BufferPlayer.from_wav(path)
        finally:
            if url.startswith(("http://", "https://")):
                Path(path).unlink(missing_ok=True)
        run.media.outbound.add(player)
        try:
            await player.wait()
        finally:
            run.media.outbound.remove(player)
    return False


async def _fetch_audio(run: ActionRun, url: str) -> str:
    """A local WAV path for ``url`` (file:// as is; http(s):// downloaded to a temp file)."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return parsed.path
    import tempfile

    client = run.context.http or httpx.AsyncClient(timeout=10)
    try:
        async with client.stream("GET", url) as response:
            response.raise_for_status()
            with tempfile.NamedTemporaryFile(suffix=".wav", delete=False) as out:
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > MAX_PLAY_BYTES:
                        raise ValueError(f"{url}: larger than {MAX_PLAY_BYTES} bytes")
                    out.write(chunk)
                return out.name
    finally:
        if run.context.http is None:
            await client.aclose()


async def _sleep(run: ActionRun) -> bool:
    await asyncio.sleep(run.option["duration"] / 1000)
    return False


async def _echo(run: ActionRun) -> bool:
    echo = run.media.start_echo()
    try:
        await asyncio.sleep(run.option["duration"] / 1000)
    finally:
        echo.stop()
        run.media.remove_inbound_consumer(echo.push)
        run.media.outbound.remove(echo)
    return False


async def _hangup(run: ActionRun) -> bool:
    reason = run.option.get("reason") or "normal"
    await run.manager.end_call(run.call.call_id, Hangup(BY_LOCAL, reason))
    return True


async def _transcribe_start(run: ActionRun) -> bool:
    if run.context.transcribes is None:
        raise RuntimeError("transcribe_start: no transcribe service in this process")
    opt = run.option
    await run.context.transcribes.start_for_call(run.call.customer_id, run.call.call_id,
                                                 language=opt["language"], direction=opt["direction"],
                                                 provider=opt.get("provider"))
    return False


async def _transcribe_stop(run: ActionRun) -> bool:
    if run.context.transcribes is not None:
        await run.context.transcribes.stop_for_call(run.call.customer_id, run.call.call_id)
    return False


EXECUTORS: dict[str, Callable[[ActionRun], Awaitable[bool]]] = {
    "answer": _answer,
    "talk": _talk,
    "play": _play,
    "sleep": _sleep,
    "echo": _echo,
    "hangup": _hangup,
    "transcribe_start": _transcribe_start,
    "transcribe_stop": _transcribe_stop,
}


def _register_more() -> None:
    """Add the executors that live in their own modules (DTMF, flow control, connect)."""
    from voipbin.calls.actions_control import EXECUTORS as control
    from voipbin.calls.connect import EXECUTORS as connect

    EXECUTORS.update(control)
    EXECUTORS.update(connect)


_register_more()
