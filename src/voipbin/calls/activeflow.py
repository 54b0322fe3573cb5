"""The flow runner: executes an activeflow's actions, one after the other, on a call.

Each action type is an entry of :data:`voipbin.calls.actions.registry.ACTIONS`; its executor takes
the :class:`~voipbin.calls.actions.base.ActionRun`. An action that needs the call answered runs
only once the answer is complete (``progressing`` stored and published); one that cannot run
publishes ``activeflow_action_failed`` and the flow goes on. When the last action finishes, the
call is hung up (``normal``), as upstream does. Hangup of the call cancels the running action.
An action may move the cursor (``goto``, ``branch``) by setting ``run.jump_to`` to an action id.
An inbound call's flow starts while it rings: ``answer`` answers it, and so does the first
action that needs media.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from voipbin.calls.actions.base import ActionRun, CallControl, FlowContext
from voipbin.calls.actions.registry import ACTIONS
from voipbin.calls.hangup import LOCAL_BYE
from voipbin.calls.live import CallEnded, LiveCall

__all__ = ["ActiveflowRunner", "FlowContext"]

log = structlog.get_logger(__name__)


class ActiveflowRunner:
    """Runs the flow of one call through :class:`CallControl`."""

    def __init__(self, context: FlowContext, control: CallControl, call: LiveCall) -> None:
        self._context = context
        self._control = control
        self._call = call

    async def run(self) -> None:
        """Execute every action, then hang up; a failing action is logged and the flow goes on."""
        if not await self.run_actions(await self._control.flow_actions(self._call)):
            await self._control.end_call(self._call.call_id, LOCAL_BYE)

    async def run_actions(self, actions: list[dict[str, Any]]) -> bool:
        """Execute ``actions`` in order (``goto``/``branch`` jump among them); True when the flow
        must stop there (a ``hangup`` action, or the call ended), False when the last one finished."""
        index_of = {a["id"]: i for i, a in enumerate(actions)}
        goto_counts: dict[str, int] = {}
        index = 0
        while index < len(actions):
            action = actions[index]
            index += 1
            await self._control.record_action(self._call, action)
            kind = ACTIONS.get(action["type"])
            if kind is None:
                await self._control.action_failed(self._call, action, f"action type {action['type']} is not supported")
                continue
            run = ActionRun(self._context, self._control, self._call, action, goto_counts=goto_counts)
            try:
                if kind.needs_answer:
                    await self._control.answer_incoming(self._call)
                stop = await kind.execute(run)
            except asyncio.CancelledError:
                raise
            except CallEnded:
                return True
            except Exception as exc:  # the action could not run: an event says so, the flow goes on
                log.warning("action failed", call_id=self._call.call_id, type=action["type"], error=repr(exc)[:300])
                await self._control.action_failed(self._call, action, f"{type(exc).__name__}: {exc}")
                continue
            if stop:
                return True
            if run.jump_to is not None:
                if run.jump_to not in index_of:
                    log.warning("jump to an unknown action id; flow goes on", target=run.jump_to)
                else:
                    index = index_of[run.jump_to]
        return False
