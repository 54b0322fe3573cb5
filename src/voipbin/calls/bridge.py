"""A two-party bridge: each call's received audio is sent to the other (``connect``).

Frame-level relay (DESIGN.md "Terms", per leg): one call's *incoming side* (what its endpoint
says, with any ``in`` speaking on that call mixed in) is pushed into a
:class:`~voipbin.media.relay.FrameRelay` that the other call's outbound mixer plays, so it is
``out`` audio of the other leg (what that endpoint hears, and what that leg's ``out``
transcription gets). The ``in`` transcription of either leg
stays its own endpoint's voice: nothing injected reaches it. Both legs may use different codecs
(PCMU one side, PCMA the other).
A relay holds at most ``max_delay_frames``: a late reader never builds up delay.
Hold and mute (``calls.controls``) stop a side's audio from crossing.

DTMF crosses too (issue 14): each digit one endpoint signals, by RFC 4733 telephone-events or by
SIP INFO (RFC 6086), is sent to the other endpoint as RFC 4733 events (RFC 4733 §2.5) when that
leg negotiated telephone-event; otherwise it is dropped (logged). Mute and hold stop digits
like audio.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from voipbin.calls.digits import DigitBuffer
from voipbin.media.relay import FrameRelay
from voipbin.media.session import RtpSession

#: RFC 4733 events shorter than this are stretched (some receivers miss 20-40 ms events)
MIN_RELAYED_DTMF_MS = 40

logger = logging.getLogger(__name__)


class Bridge:
    """Relay audio between ``a`` and ``b`` until :meth:`close`.

    ``a_sends``/``b_sends``: whether each side's audio (and DTMF) may cross now (mute ``in``/hold);
    ``a_hears``/``b_hears``: whether each side may hear the other (hold).
    ``a_digits``/``b_digits``: each call's received digits, relayed to the other as RFC 4733.
    """

    def __init__(self, a: RtpSession, b: RtpSession, *,
                 a_sends: Callable[[], bool] = lambda: True, b_sends: Callable[[], bool] = lambda: True,
                 a_hears: Callable[[], bool] = lambda: True, b_hears: Callable[[], bool] = lambda: True,
                 a_digits: DigitBuffer | None = None, b_digits: DigitBuffer | None = None) -> None:
        self.a, self.b = a, b
        a_to_b_allowed = lambda: a_sends() and b_hears()  # noqa: E731
        b_to_a_allowed = lambda: b_sends() and a_hears()  # noqa: E731
        self.a_to_b = FrameRelay(a_to_b_allowed)
        self.b_to_a = FrameRelay(b_to_a_allowed)
        a.add_inbound_consumer(self.a_to_b.push, injected=True)
        b.add_inbound_consumer(self.b_to_a.push, injected=True)
        b.outbound.add(self.a_to_b)
        a.outbound.add(self.b_to_a)
        self.digits_relayed = 0
        self._digit_links: list[tuple[DigitBuffer, Callable[[str, int], None]]] = []
        if a_digits is not None:
            self._link_digits(a_digits, b, a_to_b_allowed)
        if b_digits is not None:
            self._link_digits(b_digits, a, b_to_a_allowed)

    def _link_digits(self, source: DigitBuffer, target: RtpSession, allowed: Callable[[], bool]) -> None:
        def relay(digit: str, duration_ms: int) -> None:
            if not allowed() or target.closed:
                return
            try:
                target.send_dtmf(digit, duration_ms=max(MIN_RELAYED_DTMF_MS, duration_ms))
            except (RuntimeError, ValueError) as exc:  # no telephone-event on that leg; not a DTMF digit
                logger.info("DTMF %r not relayed: %s", digit, exc)
                return
            self.digits_relayed += 1

        source.add_listener(relay)
        self._digit_links.append((source, relay))

    def close(self) -> None:
        """Stop relaying (idempotent)."""
        self.a.remove_inbound_consumer(self.a_to_b.push)
        self.b.remove_inbound_consumer(self.b_to_a.push)
        self.b.outbound.remove(self.a_to_b)
        self.a.outbound.remove(self.b_to_a)
        self.a_to_b.stop()
        self.b_to_a.stop()
        for source, relay in self._digit_links:
            source.remove_listener(relay)
        self._digit_links.clear()
