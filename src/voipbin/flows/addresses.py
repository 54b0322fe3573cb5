"""``CommonAddress`` validation for call sources and destinations (``POST /calls`` and the ``connect``
action's options): the flow layer owns it, so action validation needs nothing of calls/."""

from __future__ import annotations

import re
from typing import Any

from voipbin.common.errors import InvalidArgument
from voipbin.numbers.service import validate_e164
from voipbin.sip.errors import SipParseError
from voipbin.sip.locate import DestinationRefused, check_uri

ADDRESS_TYPES = ("agent", "conference", "email", "extension", "line", "sip", "tel", "web_session")
DIALABLE_TYPES = ("extension", "sip", "tel")
SIP_URI = re.compile(r"^sips?:[^@\s]+@[^@\s]+$")
MAX_DESTINATIONS = 100


def address(value: Any, where: str) -> dict[str, str]:
    """A normalized address ``{type, target, target_name, name, detail}``; InvalidArgument naming ``where``."""
    if not isinstance(value, dict):
        raise InvalidArgument(f"{where} must be an object with type and target", field=where)
    kind = value.get("type")
    if kind not in ADDRESS_TYPES:
        raise InvalidArgument(f"{where}.type must be one of {', '.join(ADDRESS_TYPES)}", field=f"{where}.type")
    out = {"type": kind}
    for key in ("target", "target_name", "name", "detail"):
        item = value.get(key, "")
        if item is None:
            item = ""
        if not isinstance(item, str):
            raise InvalidArgument(f"{where}.{key} must be a string", field=f"{where}.{key}")
        out[key] = item
    return out


def source(value: Any) -> dict[str, str]:
    src = address(value, "source")
    if src["type"] == "tel":
        validate_e164(src["target"], field="source.target")
    elif src["type"] == "sip" and not SIP_URI.match(src["target"]):
        raise InvalidArgument("source.target must be a SIP URI such as sip:alice@example.com",
                              field="source.target")
    elif src["type"] not in ("tel", "sip", "extension"):
        raise InvalidArgument("source.type must be tel, sip or extension", field="source.type")
    return src


def sip_destination(target: str, where: str, *, allow_private: bool) -> None:
    """Refuse a ``sip:`` destination whose host is a loopback/private/link-local address unless
    ``allow_private`` (``VOIPBIN_SIP_ALLOW_PRIVATE``); hostnames are resolved and checked when dialled.
    InvalidArgument naming ``<where>.target``."""
    try:
        check_uri(target, allow_private=allow_private)
    except SipParseError:
        raise InvalidArgument(f"{where}.target must be a SIP URI such as sip:bob@example.com",
                              field=f"{where}.target") from None
    except DestinationRefused as exc:
        raise InvalidArgument(f"{where}.target: {exc}; set VOIPBIN_SIP_ALLOW_PRIVATE=true to allow it",
                              field=f"{where}.target") from None


def destinations(value: Any, *, allow_private_sip: bool = True) -> list[dict[str, str]]:
    """The validated destinations; a ``sip`` one on a non-public address is refused unless
    ``allow_private_sip`` (see :func:`sip_destination`)."""
    if not isinstance(value, list) or not value:
        raise InvalidArgument("destinations must be a non-empty list of addresses", field="destinations")
    if len(value) > MAX_DESTINATIONS:
        raise InvalidArgument(f"destinations may hold at most {MAX_DESTINATIONS} addresses", field="destinations")
    out = []
    for i, item in enumerate(value):
        where = f"destinations[{i}]"
        dest = address(item, where)
        if dest["type"] not in DIALABLE_TYPES:
            raise InvalidArgument(f"{where}.type must be one of {', '.join(DIALABLE_TYPES)}", field=f"{where}.type")
        if dest["type"] == "tel":
            validate_e164(dest["target"], field=f"{where}.target")
        elif dest["type"] == "sip" and not SIP_URI.match(dest["target"]):
            raise InvalidArgument(f"{where}.target must be a SIP URI such as sip:bob@example.com",
                                  field=f"{where}.target")
        elif dest["type"] == "sip":
            sip_destination(dest["target"], where, allow_private=allow_private_sip)
        elif dest["type"] == "extension" and not (dest["target_name"] or dest["target"]):
            raise InvalidArgument(f"{where}.target_name is required (the extension's name)",
                                  field=f"{where}.target_name")
        out.append(dest)
    return out
