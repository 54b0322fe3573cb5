"""Audio codecs behind one :class:`Codec` seam, and RFC 4733 telephone-event payloads."""

from __future__ import annotations

from .base import Codec
from .g711 import PcmaCodec, PcmuCodec

#: audio codecs we can negotiate, by RFC 4566 encoding name (upper case)
CODECS_BY_NAME: dict[str, type[Codec]] = {"PCMU": PcmuCodec, "PCMA": PcmaCodec}


def create_codec(name: str, payload_type: int | None = None) -> Codec:
    """A new codec instance for encoding name ``name`` (case-insensitive).

    Raises KeyError for a codec we do not implement.
    """
    return CODECS_BY_NAME[name.upper()](payload_type)


__all__ = ["CODECS_BY_NAME", "Codec", "PcmaCodec", "PcmuCodec", "create_codec"]
