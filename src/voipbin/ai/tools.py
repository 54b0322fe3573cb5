"""The tools an AI may call during ``ai_talk`` (upstream ``AIManagerToolName``, ``ai_struct_tool.rst``).

Served here: ``connect_call`` (bridge the caller to an extension or number; the AI leaves),
``stop_service`` (the AI stops, the flow goes on), ``stop_flow`` (the AI stops and the flow ends,
so the call is hung up), ``stop_media`` (nothing plays before the AI here: a no-op answer),
``set_variables`` / ``get_variables`` (the call's activeflow variables) and ``send_digits`` (an
addition: DTMF to the caller, RFC 4733). Every other upstream tool name is accepted in
``tool_names`` and offered to the model, and a call of it answers ``"not supported"`` cleanly.

:func:`specs` gives the JSON-schema declarations for the names an AI enables (``["all"]``: every
one); :class:`ToolRunner` executes a call through the call's :class:`CallControl`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from voipbin.ai.talk import ToolOutcome
from voipbin.calls.actions.base import CallControl
from voipbin.calls.live import LiveCall
from voipbin.common.errors import InvalidArgument
from voipbin.flows.actions import VALIDATORS
from voipbin.llm.base import ToolCall, ToolSpec

_ADDRESS = {"type": "object", "properties": {
    "type": {"type": "string", "description": "extension, sip or tel"},
    "target": {"type": "string", "description": "the extension's name or number, a SIP URI, or an E.164 number"},
    "target_name": {"type": "string", "description": "display name (optional)"}},
    "required": ["type", "target"]}

SERVED: dict[str, ToolSpec] = {spec.name: spec for spec in (
    ToolSpec("connect_call", "Connect the caller to a person, extension or phone number; the AI leaves the call.",
             {"type": "object", "properties": {"destinations": {"type": "array", "items": _ADDRESS},
                                               "source": _ADDRESS}, "required": ["destinations"]}),
    ToolSpec("stop_service", "End the AI conversation; the call goes on with its next flow action.",
             {"type": "object", "properties": {}}),
    ToolSpec("stop_flow", "End the AI conversation and the whole call.", {"type": "object", "properties": {}}),
    ToolSpec("stop_media", "Stop media that played before the AI took over.", {"type": "object", "properties": {}}),
    ToolSpec("set_variables", "Save key-value data to the call's flow context.",
             {"type": "object", "properties": {"variables": {"type": "object",
                                                             "additionalProperties": {"type": "string"}}},
              "required": ["variables"]}),
    ToolSpec("get_variables", "Read the call's flow variables.",
             {"type": "object", "properties": {"names": {"type": "array", "items": {"type": "string"}}}}),
    ToolSpec("send_digits", "Send DTMF digits (0-9, *, #, A-D) to the caller.",
             {"type": "object", "properties": {"digits": {"type": "string"}}, "required": ["digits"]}),
)}

#: upstream tool names this deployment does not run (offered, answered "not supported")
NOT_SERVED = ("create_call", "get_aicall_messages", "search_knowledge", "send_email", "send_message",
              "get_correlation", "get_resource", "describe_action")


def specs(tool_names: Sequence[str]) -> list[ToolSpec]:
    """The declarations for ``tool_names`` (``["all"]``: every served tool)."""
    names = list(SERVED) if "all" in tool_names else [n for n in tool_names if n in SERVED or n in NOT_SERVED]
    return [SERVED.get(n) or ToolSpec(n, f"{n} (not available on this deployment)", {"type": "object"})
            for n in names]


class ToolRunner:
    """Runs the tool calls of one conversation on ``call``."""

    def __init__(self, control: CallControl, call: LiveCall, tool_names: Sequence[str]) -> None:
        self._control = control
        self._call = call
        self._enabled = set(SERVED) if "all" in tool_names else set(tool_names)
        #: the ``connect`` option of a ``connect_call`` (run by the action once the AI has left)
        self.connect_option: dict[str, Any] | None = None

    async def __call__(self, call: ToolCall) -> ToolOutcome:
        if call.name not in self._enabled:
            return ToolOutcome(json.dumps({"error": f"tool {call.name} is not enabled for this AI"}))
        if call.name not in SERVED:
            return ToolOutcome(json.dumps({"error": f"tool {call.name} is not supported by this deployment"}))
        args = call.arguments if isinstance(call.arguments, dict) else {}
        try:
            return await getattr(self, f"_{call.name}")(args)
        except InvalidArgument as exc:
            return ToolOutcome(json.dumps({"error": exc.message}))

    async def _connect_call(self, args: dict[str, Any]) -> ToolOutcome:
        destinations = args.get("destinations")
        if isinstance(destinations, list):  # a model names an extension by its name in ``target`` (upstream's schema)
            destinations = [{**d, "target_name": d.get("target_name") or d.get("target", "")}
                            if isinstance(d, dict) and d.get("type") == "extension" else d for d in destinations]
        option: dict[str, Any] = {"destinations": destinations}
        if args.get("source"):
            option["source"] = args["source"]
        self.connect_option = VALIDATORS["connect"](option, "connect_call")  # InvalidArgument: told to the model
        return ToolOutcome(json.dumps({"result": "connecting"}), end="connect_call")

    async def _stop_service(self, args: dict[str, Any]) -> ToolOutcome:
        return ToolOutcome(json.dumps({"result": "stopped"}), end="stop_service")

    async def _stop_flow(self, args: dict[str, Any]) -> ToolOutcome:
        return ToolOutcome(json.dumps({"result": "stopped"}), end="stop_flow")

    async def _stop_media(self, args: dict[str, Any]) -> ToolOutcome:
        return ToolOutcome(json.dumps({"result": "no media was playing"}))

    async def _set_variables(self, args: dict[str, Any]) -> ToolOutcome:
        values = args.get("variables")
        if not isinstance(values, dict) or not values:
            return ToolOutcome(json.dumps({"error": "variables must be an object of name -> value"}))
        await self._control.set_variables(self._call, {str(k): str(v) for k, v in values.items()})
        return ToolOutcome(json.dumps({"result": "saved", "names": sorted(map(str, values))}))

    async def _get_variables(self, args: dict[str, Any]) -> ToolOutcome:
        names = [str(n) for n in args.get("names") or []]
        return ToolOutcome(json.dumps({n: await self._control.get_variable(self._call, n) for n in names}))

    async def _send_digits(self, args: dict[str, Any]) -> ToolOutcome:
        digits = str(args.get("digits") or "")
        if not digits or len(digits) > 100 or any(d not in "0123456789ABCD*#" for d in digits.upper()):
            return ToolOutcome(json.dumps({"error": "digits must be 1-100 of 0-9, A-D, *, #"}))
        media = self._call.leg.media if self._call.leg is not None else None
        if media is None:
            return ToolOutcome(json.dumps({"error": "the call has no media"}))
        try:
            await media.send_dtmf(digits.upper())
        except RuntimeError as exc:  # no telephone-event negotiated
            return ToolOutcome(json.dumps({"error": str(exc)}))
        return ToolOutcome(json.dumps({"result": "sent", "digits": digits.upper()}))
