"""Why a call ended: SIP final responses and local causes mapped to ``hangup_by``/``hangup_reason``.

Reasons are the spec's ``CallManagerCallHangupReason``; the mapping follows the upstream call
docs: busy (486/600), noanswer (408/480 ring timeout at the far end, 603 decline), cancel (we
cancelled: 487), dialout (our own ring timeout), failed (anything else before an answer), normal
(BYE after an answer).
"""

from __future__ import annotations

from dataclasses import dataclass

BY_LOCAL = "local"
BY_REMOTE = "remote"


@dataclass(frozen=True, slots=True)
class Hangup:
    by: str
    reason: str


def from_final_response(status_code: int) -> Hangup:
    """The hangup for a non-2xx final response to our INVITE (RFC 3261 §21)."""
    if status_code in (486, 600):
        return Hangup(BY_REMOTE, "busy")
    if status_code in (408, 480, 603):
        return Hangup(BY_REMOTE, "noanswer")
    if status_code == 487:
        return Hangup(BY_LOCAL, "cancel")
    return Hangup(BY_REMOTE, "failed")


REMOTE_BYE = Hangup(BY_REMOTE, "normal")
LOCAL_BYE = Hangup(BY_LOCAL, "normal")
LOCAL_CANCEL = Hangup(BY_LOCAL, "cancel")
RING_TIMEOUT = Hangup(BY_LOCAL, "dialout")
NO_CONTACT = Hangup(BY_LOCAL, "failed")
TRANSPORT_FAILURE = Hangup(BY_LOCAL, "failed")
RTP_TIMEOUT = Hangup(BY_REMOTE, "failed")
MAX_DURATION = Hangup(BY_LOCAL, "timeout")
POD_LOST = Hangup(BY_LOCAL, "failed")  # the process that drove the call died (restart recovery)

#: the final response we send when we end an inbound call before answering it, by hangup reason
REJECT_CODES = {"busy": 486, "noanswer": 480, "failed": 500, "dialout": 408, "timeout": 408}
DEFAULT_REJECT_CODE = 603  # Decline


def reject_code_for(hangup: Hangup) -> int:
    """The SIP final response (RFC 3261 §21) for ending an unanswered inbound call with ``hangup``."""
    return REJECT_CODES.get(hangup.reason, DEFAULT_REJECT_CODE)
