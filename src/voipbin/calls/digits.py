"""DTMF digits received on a call, and how ``digits_receive`` gathers them.

Digits arrive from RFC 4733 telephone-events (the RTP session's ``on_dtmf``) or SIP INFO
(``application/dtmf-relay`` / ``application/dtmf``, RFC 6086) and are buffered per call, so
a digit pressed during a prompt before ``digits_receive`` still counts (type-ahead). Listeners
see each digit as it arrives (a bridge relays it to the other call, :mod:`voipbin.calls.bridge`).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable

DTMF_DIGITS = "0123456789*#ABCD"
VARIABLE_DIGITS = "voipbin.call.digits"
_SIGNAL = re.compile(r"^\s*signal\s*=\s*(\S+)\s*$", re.IGNORECASE | re.MULTILINE)
_DURATION = re.compile(r"^\s*duration\s*=\s*(\d+)\s*$", re.IGNORECASE | re.MULTILINE)
DEFAULT_INFO_DURATION_MS = 100
#: a digit's length when its source gave none
DEFAULT_DIGIT_DURATION_MS = 100

DigitListener = Callable[[str, int], None]
logger = logging.getLogger(__name__)


def parse_info(content_type: str, body: bytes) -> tuple[str, int] | None:
    """(digit, duration_ms) of a SIP INFO body, or None when it carries no DTMF.

    ``application/dtmf-relay``: ``Signal=5\\r\\nDuration=160``; ``application/dtmf``: ``5``.
    Signal 10 and 11 are ``*`` and ``#`` (RFC 4733 event codes, used by some gateways).
    """
    kind = content_type.split(";", 1)[0].strip().lower()
    text = body.decode("ascii", errors="replace")
    if kind == "application/dtmf-relay":
        match = _SIGNAL.search(text)
        if match is None:
            return None
        signal = match.group(1).upper()
        duration = _DURATION.search(text)
        duration_ms = int(duration.group(1)) if duration else DEFAULT_INFO_DURATION_MS
    elif kind == "application/dtmf":
        signal, duration_ms = text.strip().upper(), DEFAULT_INFO_DURATION_MS
    else:
        return None
    signal = {"10": "*", "11": "#"}.get(signal, signal)
    if len(signal) != 1 or signal not in DTMF_DIGITS:
        return None
    return signal, duration_ms


class DigitBuffer:
    """The digits of one call not yet consumed by a ``digits_receive``."""

    def __init__(self) -> None:
        self.pending = ""
        self._changed = asyncio.Event()
        self._listeners: list[DigitListener] = []

    def push(self, digit: str, duration_ms: int = DEFAULT_DIGIT_DURATION_MS) -> None:
        """A digit from the endpoint: buffered, and ``listener(digit, duration_ms)`` for each listener."""
        self.pending += digit
        self._changed.set()
        for listener in list(self._listeners):
            try:
                listener(digit, duration_ms)
            except Exception:
                logger.exception("digit listener %r failed", listener)

    def add_listener(self, listener: DigitListener) -> None:
        """Call ``listener(digit, duration_ms)`` for every digit pushed from now on. Must not block."""
        self._listeners.append(listener)

    def remove_listener(self, listener: DigitListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    async def collect(self, *, duration_s: float, length: int, key: str) -> str:
        """Take digits until ``length`` of them, a digit in ``key`` (included, as the docs say), or
        ``duration_s`` elapsed; returns what was taken (possibly ""). Digits after the end stay pending."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + duration_s
        taken = ""
        while True:
            while self.pending:
                digit, self.pending = self.pending[0], self.pending[1:]
                taken += digit
                if (key and digit in key) or (length > 0 and len(taken) >= length):
                    return taken
            self._changed.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                return taken
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                return taken
