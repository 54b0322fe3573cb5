"""Statuses of conferences and of their participants (upstream ``ConferenceManagerConferenceStatus``,
``ConferenceManagerConferencecallStatus``; ``str`` Enums) and the moves each may make.

A conference moves ``starting`` → ``progressing`` → ``terminating`` → ``terminated``; a
participant (conferencecall) ``joining`` → ``joined`` → ``leaving`` → ``leaved``, and may leave
while still joining (its pre-flow hung up). States only move forward (upstream's rule);
:func:`may_move` tells whether a move is one of those.
"""

from __future__ import annotations

from enum import StrEnum


class ConferenceType(StrEnum):
    CONFERENCE = "conference"  # a room of 2+ that stays up, empty or not, until deleted or timed out
    CONNECT = "connect"  # two parties: when one leaves, the other is released and the room ends


class ConferenceStatus(StrEnum):
    STARTING = "starting"
    PROGRESSING = "progressing"
    TERMINATING = "terminating"
    TERMINATED = "terminated"


class ConferencecallStatus(StrEnum):
    JOINING = "joining"
    JOINED = "joined"
    LEAVING = "leaving"
    LEAVED = "leaved"


CONFERENCE_TRANSITIONS: dict[ConferenceStatus, frozenset[ConferenceStatus]] = {
    ConferenceStatus.STARTING: frozenset({ConferenceStatus.PROGRESSING, ConferenceStatus.TERMINATING}),
    ConferenceStatus.PROGRESSING: frozenset({ConferenceStatus.TERMINATING}),
    ConferenceStatus.TERMINATING: frozenset({ConferenceStatus.TERMINATED}),
    ConferenceStatus.TERMINATED: frozenset(),
}

CONFERENCECALL_TRANSITIONS: dict[ConferencecallStatus, frozenset[ConferencecallStatus]] = {
    ConferencecallStatus.JOINING: frozenset({ConferencecallStatus.JOINED, ConferencecallStatus.LEAVING}),
    ConferencecallStatus.JOINED: frozenset({ConferencecallStatus.LEAVING}),
    ConferencecallStatus.LEAVING: frozenset({ConferencecallStatus.LEAVED}),
    ConferencecallStatus.LEAVED: frozenset(),
}


def may_move(current: str, new: str) -> bool:
    """Whether a conference, or a conferencecall, in ``current`` may move to ``new`` (ValueError for
    a string that is neither kind of status, or a mix of the two)."""
    if current in ConferenceStatus.__members__.values():
        return ConferenceStatus(new) in CONFERENCE_TRANSITIONS[ConferenceStatus(current)]
    return ConferencecallStatus(new) in CONFERENCECALL_TRANSITIONS[ConferencecallStatus(current)]
