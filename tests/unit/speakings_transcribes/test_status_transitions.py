"""The status tables of speakings and transcribes (issue 16): final statuses stay final."""

from __future__ import annotations

import pytest

from voipbin.speakings import status as speaking
from voipbin.transcribes import status as transcribe


@pytest.mark.parametrize(("current", "new", "allowed"), [
    ("initiating", "active", True), ("initiating", "stopped", True), ("active", "stopped", True),
    ("active", "initiating", False), ("stopped", "active", False), ("stopped", "stopped", False),
    ("active", "active", False),
])
def test_speaking_moves(current: str, new: str, allowed: bool) -> None:
    assert speaking.may_move(current, new) is allowed


@pytest.mark.parametrize(("current", "new", "allowed"), [
    ("progressing", "done", True), ("done", "progressing", False), ("done", "done", False),
])
def test_transcribe_moves(current: str, new: str, allowed: bool) -> None:
    assert transcribe.may_move(current, new) is allowed


def test_values_are_the_upstream_strings() -> None:
    assert [s.value for s in speaking.SpeakingStatus] == ["initiating", "active", "stopped"]
    assert [s.value for s in transcribe.TranscribeStatus] == ["progressing", "done"]
    with pytest.raises(ValueError):
        speaking.may_move("active", "paused")
