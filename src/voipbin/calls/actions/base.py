"""What a flow action sees: the :class:`CallControl` protocol and one :class:`ActionRun`.

Actions never reach into the call manager: everything they do to calls goes through
:class:`CallControl` (implemented by :class:`voipbin.calls.manager.CallManager`), so the
dependency runs one way (manager -> runner -> actions -> this protocol). An executor takes the
:class:`ActionRun` and returns True when the flow must stop (``hangup``), else False.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from voipbin.calls.hangup import Hangup
from voipbin.calls.live import LiveCall
from voipbin.media.session import RtpSession
from voipbin.speech.tts.registry import TtsRegistry
from voipbin.store.models import Call


class CallControl(Protocol):
    """The operations on calls that flow actions (and the flow runner) may use."""

    async def answer_incoming(self, call: LiveCall) -> None:
        """Answer an inbound call and wait until it is ``progressing`` (nothing for an answered or
        outgoing call); raises :class:`~voipbin.calls.live.CallEnded` if it ends first."""

    async def end_call(self, call_id: str, hangup: Hangup) -> None:
        """Hang up (BYE) or cancel a live call for a local reason; returns once asked, not ended."""

    def end_call_soon(self, call_id: str, hangup: Hangup) -> None:
        """:meth:`end_call` in a task of its own (from a ``finally`` that must not wait)."""

    async def get(self, customer_id: str, call_id: str) -> Call:
        """The stored call (NotFound for a missing or foreign one)."""

    async def owns_number(self, customer_id: str, number: str) -> bool:
        """Whether ``number`` (E.164) belongs to ``customer_id``."""

    async def dial_chained(self, master: LiveCall, source: dict[str, str],
                           destinations: list[dict[str, str]]) -> list[LiveCall]:
        """Store and dial one call per endpoint of ``destinations``, chained to ``master`` (no flow
        of their own). Raises InvalidArgument for one that cannot be dialled (nothing written)."""

    async def set_variables(self, call: LiveCall, values: dict[str, str]) -> None:
        """Merge ``values`` into the call's activeflow variables (``activeflow_updated``)."""

    async def get_variable(self, call: LiveCall, name: str) -> str:
        """An activeflow variable of the call ("" when unset)."""

    async def flow_actions(self, call: LiveCall) -> list[dict[str, Any]]:
        """The actions of the call's activeflow."""

    async def record_action(self, call: LiveCall, action: dict[str, Any]) -> None:
        """The flow moved to ``action`` (stored on the activeflow and the call, published)."""

    async def action_failed(self, call: LiveCall, action: dict[str, Any], message: str) -> None:
        """``action`` could not run (``activeflow_action_failed``); the flow goes on."""

    async def run_flow(self, call: LiveCall, flow_id: str) -> None:
        """Run the actions of the stored flow ``flow_id`` (of the call's customer) on the call, then
        return (the call's own flow goes on; a conference's pre/post flow). NotFound for a missing flow;
        :class:`~voipbin.calls.live.CallEnded` if the call ends meanwhile."""


class TranscribeControl(Protocol):
    """What the ``transcribe_start``/``transcribe_stop`` actions need (implemented by transcribes/)."""

    async def start_for_call(self, customer_id: str, call_id: str, *, language: str, direction: str,
                             provider: str | None) -> None: ...

    async def stop_for_call(self, customer_id: str, call_id: str) -> None: ...


class ConferenceControl(Protocol):
    """What the ``conference_join`` action needs (implemented by conferences/)."""

    async def check_join(self, customer_id: str, conference_id: str, field: str) -> None:
        """NotFound / InvalidArgument naming ``field`` unless the conference can be joined now."""

    async def join(self, control: CallControl, call: LiveCall, conference_id: str) -> None:
        """Keep the answered ``call`` in the room until it leaves (hangup, kicked, room ended)."""


class AiControl(Protocol):
    """What the ``ai_talk`` action needs (implemented by ai/)."""

    async def check_talk(self, customer_id: str, option: dict[str, Any], where: str) -> None:
        """InvalidArgument naming ``<where>.<field>`` unless the AI the option names is the account's."""

    async def talk(self, run: ActionRun) -> bool:
        """Converse on the answered call until the AI ends; True when the flow must stop."""


@dataclass
class FlowContext:
    """Services the actions use; built once per process."""

    tts: TtsRegistry
    transcribes: TranscribeControl | None = None
    conferences: ConferenceControl | None = None
    ai: AiControl | None = None
    http: httpx.AsyncClient | None = None


@dataclass
class ActionRun:
    """One action being executed on one call."""

    context: FlowContext
    control: CallControl
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


Executor = Callable[[ActionRun], Awaitable[bool]]
"""Runs one action; True when the flow must stop."""
