"""A transcribe's status (upstream ``TranscribeManagerTranscribeStatus``; a ``str`` Enum, so rows,
events and comparisons with plain strings are unchanged) and the moves it may make.

``progressing`` → ``done`` (stopped, its call ended, or its process died); ``done`` is final.
"""

from __future__ import annotations

from enum import StrEnum


class TranscribeStatus(StrEnum):
    PROGRESSING = "progressing"
    DONE = "done"


#: the statuses a transcribe may move to from each status
TRANSCRIBE_TRANSITIONS: dict[TranscribeStatus, frozenset[TranscribeStatus]] = {
    TranscribeStatus.PROGRESSING: frozenset({TranscribeStatus.DONE}),
    TranscribeStatus.DONE: frozenset(),
}


def may_move(current: str, new: str) -> bool:
    """Whether a transcribe in ``current`` moves to ``new`` (ValueError for a string that is no status)."""
    return TranscribeStatus(new) in TRANSCRIBE_TRANSITIONS[TranscribeStatus(current)]
