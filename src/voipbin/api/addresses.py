"""A ``CommonAddress`` sent without ``type`` (upstream's enum includes ``""``; the Go CLI and SDK
examples send only ``target``): the type is inferred from the target, as a person reading it would.

Rules, in order (``target`` trimmed):

* ``+`` and 2-15 digits (E.164)                      -> ``tel``
* ``sip:``/``sips:`` URI                             -> ``sip``
* ``user@host`` without a scheme                     -> ``sip`` (target becomes ``sip:user@host``)
* a UUID                                             -> ``extension`` (its id)
* a SIP user name of letters/digits/``-_.!~*'()``, not 7 or more digits only -> ``extension`` by name or
  number (moved to ``target_name`` when that is empty)
* no target but a ``target_name``                    -> ``extension``

Anything else is ambiguous (e.g. ``15551234567``: a phone number missing its ``+``, or an extension
number?) and raises InvalidArgument naming ``<where>.type``. An address that has a ``type`` is returned
unchanged; validation of the typed address stays in :mod:`voipbin.flows.addresses`.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from voipbin.common.errors import InvalidArgument

E164 = re.compile(r"^\+[1-9]\d{1,14}$")
SIP_SCHEME = re.compile(r"^sips?:", re.IGNORECASE)
BARE_SIP = re.compile(r"^[^@\s:]+@[^@\s]+$")
SIP_USER = re.compile(r"^[A-Za-z0-9\-_.!~*'()]{1,64}$")
LONG_DIGITS = re.compile(r"^\d{7,}$")


def infer_type(value: Any, where: str) -> Any:
    """``value`` with ``type`` filled in when it is missing or ``""``; other values are returned as they are.

    Raises InvalidArgument (field ``<where>.type``) when the target does not tell the type.
    """
    if not isinstance(value, dict) or value.get("type") not in (None, ""):
        return value
    target = value.get("target")
    target = target.strip() if isinstance(target, str) else ""
    target_name = value.get("target_name") if isinstance(value.get("target_name"), str) else ""
    if E164.match(target):
        return {**value, "type": "tel", "target": target}
    if SIP_SCHEME.match(target):
        return {**value, "type": "sip", "target": target}
    if BARE_SIP.match(target):
        return {**value, "type": "sip", "target": f"sip:{target}"}
    if target and _is_uuid(target):
        return {**value, "type": "extension", "target": target}
    if target and SIP_USER.match(target) and not LONG_DIGITS.match(target):
        return {**value, "type": "extension", "target": "", "target_name": target_name or target}
    if not target and target_name:
        return {**value, "type": "extension"}
    shown = target or target_name
    raise InvalidArgument(
        f"{where}.type is required: cannot tell the type of {shown!r} (tel needs +<digits> in E.164, "
        f"sip a sip: URI or user@host, extension its id or name)" if shown else
        f"{where}.type is required (or a target to infer it from)", field=f"{where}.type")


def infer_types(values: Any, where: str) -> Any:
    """:func:`infer_type` on each item of a list (``<where>[i]``); anything else unchanged."""
    if not isinstance(values, list):
        return values
    return [infer_type(v, f"{where}[{i}]") for i, v in enumerate(values)]


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
