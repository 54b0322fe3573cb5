"""The in-process state of one call this process drives: :class:`LiveCall`.

The stored ``calls`` row is the call as the API sees it; a ``LiveCall`` holds what only the
driving process has: the SIP leg and its media, the flow task, the events actions wait on
(``ringing``, ``answered``, ``ended``), received DTMF and the hold/mute controls.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from voipbin.calls.controls import MediaControls
from voipbin.calls.digits import DigitBuffer
from voipbin.calls.hangup import Hangup
from voipbin.calls.leg import DialTarget, Leg
from voipbin.calls.status import CallOrigin, CallStatus, check_transition


class CallEnded(Exception):
    """The call hung up while an operation waited on it."""


@dataclass
class LiveCall:
    """One call driven by this process (its leg and flow task)."""

    call_id: str
    customer_id: str
    groupcall_id: str
    activeflow_id: str
    target: DialTarget | None
    leg: Leg | None = None
    status: CallStatus = CallStatus.DIALING  # changed only by move_to
    ring_timer: asyncio.TimerHandle | None = None
    flow_task: asyncio.Task[None] | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    pending_hangup: Hangup | None = None
    origin: CallOrigin = CallOrigin.OUTGOING
    master_call_id: str = ""  # a call dialled by ``connect``: no flow of its own, bridged to its master
    ringing: asyncio.Event = field(default_factory=asyncio.Event)
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    digits: DigitBuffer = field(default_factory=DigitBuffer)
    controls: MediaControls | None = None  # hold / mute / music on hold, once answered
    result: Hangup | None = None  # why it ended, once it has

    def move_to(self, status: CallStatus) -> None:
        """Change ``status``; raises :class:`~voipbin.calls.status.IllegalTransition` for a move the
        call lifecycle does not allow (:data:`~voipbin.calls.status.CALL_TRANSITIONS`)."""
        self.status = check_transition(self.status, status)
