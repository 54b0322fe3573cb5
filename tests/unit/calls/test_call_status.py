"""The call status table: the lifecycle's moves are allowed, anything else is rejected."""

from __future__ import annotations

import pytest

from voipbin.calls.live import LiveCall
from voipbin.calls.status import CALL_TRANSITIONS, CallStatus, IllegalTransition, check_transition


def test_values_are_the_upstream_strings() -> None:
    assert [s.value for s in CallStatus] == ["dialing", "ringing", "progressing", "terminating", "canceling",
                                             "hangup"]
    assert CallStatus.HANGUP == "hangup" and f"{CallStatus.RINGING}" == "ringing"


@pytest.mark.parametrize("path", [
    ["dialing", "ringing", "progressing", "terminating", "hangup"],
    ["dialing", "progressing", "hangup"],
    ["ringing", "canceling", "hangup"],
    ["dialing", "hangup"],
])
def test_lifecycle_paths_are_allowed(path: list[str]) -> None:
    call = LiveCall("c", "cu", "", "", None, status=CallStatus(path[0]))
    for status in path[1:]:
        call.move_to(CallStatus(status))
    assert call.status == path[-1]


@pytest.mark.parametrize(("current", "new"), [
    ("hangup", "progressing"), ("hangup", "canceling"), ("terminating", "progressing"), ("canceling", "progressing"),
    ("progressing", "ringing"), ("progressing", "canceling"), ("ringing", "dialing"), ("hangup", "hangup"),
])
def test_illegal_moves_are_rejected(current: str, new: str) -> None:
    with pytest.raises(IllegalTransition):
        check_transition(current, new)
    call = LiveCall("c", "cu", "", "", None, status=CallStatus(current))
    with pytest.raises(IllegalTransition):
        call.move_to(CallStatus(new))
    assert call.status == current


def test_every_status_has_a_row_and_hangup_is_final() -> None:
    assert set(CALL_TRANSITIONS) == set(CallStatus)
    assert not CALL_TRANSITIONS[CallStatus.HANGUP]
