"""The ``reference_type`` / ``reference_id`` pair that speakings and transcribes attach to (seed 004)."""

from __future__ import annotations

import uuid

from voipbin.common.errors import InvalidArgument


def call_reference(reference_type: str | None, reference_id: str | None, *, not_yet: tuple[str, ...] = ()) -> str:
    """The call id (canonical UUID text) a ``call`` reference names.

    Raises InvalidArgument (-> 400, naming the field): ``reference_type`` missing, one of ``not_yet``
    (upstream types not supported yet) or not ``call``; ``reference_id`` missing or not a UUID.
    """
    if not reference_type:
        raise InvalidArgument("reference_type is required", field="reference_type")
    if reference_type in not_yet:
        raise InvalidArgument(f"reference_type {reference_type} is not supported yet", field="reference_type")
    if reference_type != "call":
        raise InvalidArgument("reference_type must be call", field="reference_type")
    if not reference_id:
        raise InvalidArgument("reference_id is required", field="reference_id")
    try:
        return str(uuid.UUID(reference_id))
    except ValueError as exc:
        raise InvalidArgument("reference_id must be a call id (UUID)", field="reference_id") from exc
