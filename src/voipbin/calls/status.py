"""Statuses of calls, groupcalls and activeflows, a call's origin, and the moves a call's status may make.

Values are the upstream strings (``CallManagerCallStatus``, ``CallManagerGroupcallStatus``; a
``str`` Enum, so rows, events and comparisons with plain strings are unchanged).

A call moves ``dialing`` → ``ringing`` → ``progressing`` → ``terminating`` → ``hangup``;
``canceling`` when we end it before the answer; ``hangup`` from any status (the far end, a
failure). :func:`check_transition` rejects any other move (:class:`IllegalTransition`): a
programming error, never a client's.
"""

from __future__ import annotations

from enum import StrEnum


class CallStatus(StrEnum):
    DIALING = "dialing"
    RINGING = "ringing"
    PROGRESSING = "progressing"
    TERMINATING = "terminating"
    CANCELING = "canceling"
    HANGUP = "hangup"


class CallOrigin(StrEnum):
    """Who started the call (the row's ``direction``, ``CallManagerCallDirection``)."""

    OUTGOING = "outgoing"  # we dialled it (``POST /calls``, ``connect``)
    INCOMING = "incoming"  # an INVITE reached us


class GroupcallStatus(StrEnum):
    PROGRESSING = "progressing"
    HANGINGUP = "hangingup"
    HANGUP = "hangup"


class ActiveflowStatus(StrEnum):
    RUNNING = "running"
    ENDED = "ended"


#: the statuses a call may move to from each status
CALL_TRANSITIONS: dict[CallStatus, frozenset[CallStatus]] = {
    CallStatus.DIALING: frozenset({CallStatus.RINGING, CallStatus.PROGRESSING, CallStatus.CANCELING,
                                   CallStatus.HANGUP}),
    CallStatus.RINGING: frozenset({CallStatus.PROGRESSING, CallStatus.CANCELING, CallStatus.HANGUP}),
    CallStatus.PROGRESSING: frozenset({CallStatus.TERMINATING, CallStatus.HANGUP}),
    CallStatus.TERMINATING: frozenset({CallStatus.HANGUP}),
    CallStatus.CANCELING: frozenset({CallStatus.HANGUP}),
    CallStatus.HANGUP: frozenset(),
}

#: call statuses after which nothing more happens to a call
FINAL_CALL_STATUSES = frozenset({CallStatus.HANGUP})
#: a call being ended by us: no second hangup is sent
ENDING_CALL_STATUSES = frozenset({CallStatus.TERMINATING, CallStatus.CANCELING})


class IllegalTransition(RuntimeError):
    """A call status move the lifecycle does not allow (a bug in call control)."""


def check_transition(current: str, new: str) -> CallStatus:
    """``new`` as a :class:`CallStatus` if a call may move there from ``current``; else
    :class:`IllegalTransition` (ValueError for a string that is no call status)."""
    target = CallStatus(new)
    if target not in CALL_TRANSITIONS[CallStatus(current)]:
        raise IllegalTransition(f"a call cannot move from {current} to {new}")
    return target
