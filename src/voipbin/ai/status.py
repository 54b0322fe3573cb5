"""Aicall statuses (upstream ``AIManagerAIcallStatus``) and the moves each may make.

An aicall starts ``initiating``, is ``progressing`` while the conversation runs, may pause
(``pausing`` → ``resuming`` → ``progressing``) and ends ``terminating`` → ``terminated``; any
live state may go to ``terminating``. States never move back from ``terminating``.
"""

from __future__ import annotations

from enum import StrEnum


class AicallStatus(StrEnum):
    INITIATING = "initiating"
    PROGRESSING = "progressing"
    PAUSING = "pausing"
    RESUMING = "resuming"
    TERMINATING = "terminating"
    TERMINATED = "terminated"


TRANSITIONS: dict[AicallStatus, frozenset[AicallStatus]] = {
    AicallStatus.INITIATING: frozenset({AicallStatus.PROGRESSING, AicallStatus.TERMINATING}),
    AicallStatus.PROGRESSING: frozenset({AicallStatus.PAUSING, AicallStatus.TERMINATING}),
    AicallStatus.PAUSING: frozenset({AicallStatus.RESUMING, AicallStatus.TERMINATING}),
    AicallStatus.RESUMING: frozenset({AicallStatus.PROGRESSING, AicallStatus.TERMINATING}),
    AicallStatus.TERMINATING: frozenset({AicallStatus.TERMINATED}),
    AicallStatus.TERMINATED: frozenset(),
}


def may_move(current: str, new: str) -> bool:
    """Whether an aicall in ``current`` may move to ``new`` (ValueError for an unknown status)."""
    return AicallStatus(new) in TRANSITIONS[AicallStatus(current)]
