"""A speaking's status (upstream ``TtsManagerSpeakingStatus``; a ``str`` Enum, so rows, events and
comparisons with plain strings are unchanged) and the moves it may make.

``initiating`` → ``active`` (the pipeline started) → ``stopped``; ``initiating`` → ``stopped`` (the call
ended or the engine failed first). ``stopped`` is final: a late move there is a no-op, any other move
from it is refused.
"""

from __future__ import annotations

from enum import StrEnum


class SpeakingStatus(StrEnum):
    INITIATING = "initiating"
    ACTIVE = "active"
    STOPPED = "stopped"


#: the statuses a speaking may move to from each status
SPEAKING_TRANSITIONS: dict[SpeakingStatus, frozenset[SpeakingStatus]] = {
    SpeakingStatus.INITIATING: frozenset({SpeakingStatus.ACTIVE, SpeakingStatus.STOPPED}),
    SpeakingStatus.ACTIVE: frozenset({SpeakingStatus.STOPPED}),
    SpeakingStatus.STOPPED: frozenset(),
}


def may_move(current: str, new: str) -> bool:
    """Whether a speaking in ``current`` moves to ``new`` (ValueError for a string that is no status)."""
    return SpeakingStatus(new) in SPEAKING_TRANSITIONS[SpeakingStatus(current)]
