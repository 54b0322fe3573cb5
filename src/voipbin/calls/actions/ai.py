"""The ``ai_talk`` action: a managed AI converses with the caller (``FlowManagerActionOptionAITalk``).

The conversation itself is ai/'s (through :class:`~voipbin.calls.actions.base.AiControl`): this
module only hands the run over. When the AI stops, the flow goes on (or stops: ``stop_flow``).
"""

from __future__ import annotations

from voipbin.calls.actions.base import ActionRun


async def ai_talk(run: ActionRun) -> bool:
    if run.context.ai is None:
        raise RuntimeError("the managed AI is not available in this process")
    return await run.context.ai.talk(run)
