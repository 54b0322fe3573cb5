"""The ``reference_type`` / ``reference_id`` pair that speakings and transcribes attach to (seed 004):
a ``call``, or a conference (``confbridge``, seeds 001 and 004)."""

from __future__ import annotations

import uuid

from voipbin.common.errors import InvalidArgument

REFERENCE_TYPES = ("call", "confbridge")


def reference(reference_type: str | None, reference_id: str | None, *, not_yet: tuple[str, ...] = ()
              ) -> tuple[str, str]:
    """``(reference_type, reference_id)`` with the id as canonical UUID text.

    Raises InvalidArgument (-> 400, naming the field): ``reference_type`` missing, one of ``not_yet``
    (upstream types not supported yet) or not in :data:`REFERENCE_TYPES`; ``reference_id`` missing
    or not a UUID.
    """
    if not reference_type:
        raise InvalidArgument("reference_type is required", field="reference_type")
    if reference_type in not_yet:
        raise InvalidArgument(f"reference_type {reference_type} is not supported yet", field="reference_type")
    if reference_type not in REFERENCE_TYPES:
        raise InvalidArgument("reference_type must be call or confbridge", field="reference_type")
    if not reference_id:
        raise InvalidArgument("reference_id is required", field="reference_id")
    try:
        return reference_type, str(uuid.UUID(reference_id))
    except ValueError as exc:
        what = "a call id" if reference_type == "call" else "a conference id"
        raise InvalidArgument(f"reference_id must be {what} (UUID)", field="reference_id") from exc
