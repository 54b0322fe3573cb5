"""The 2xx to an INVITE, retransmitted by the UAS core until its ACK (RFC 3261 §13.3.1.4).

The INVITE server transaction ends when it sends a 2xx (the transaction layer has no RFC 6026
Accepted state), so the dialog usage keeps the 2xx and sends it again itself: Timer G style, first
after T1, the interval doubling up to T2, over unreliable transports only; Timer H style, no ACK
within 64*T1 gives up (``on_timeout``). One :class:`Retransmitted2xx` per session serves the
initial INVITE we answer and every re-INVITE we answer (one at a time).

Timers run on a :class:`~voipbin.sip.transaction.Clock` (tests pass a fake one).
"""

from __future__ import annotations

from collections.abc import Callable

from voipbin.sip.message import Response
from voipbin.sip.transaction import Clock, ServerTransaction, TimerHandle
from voipbin.sip.transport import Addr, Transport


class Retransmitted2xx:
    """The 2xx we sent last for an INVITE, until its ACK.

    ``t1``/``t2``: seconds (RFC 3261 §17.1.1.1); ``on_retransmit()``: called after each
    retransmission (stats); ``on_timeout()``: no ACK within 64*T1 (the session ends with BYE).
    """

    def __init__(self, clock: Clock, t1: float, t2: float, *, on_retransmit: Callable[[], None],
                 on_timeout: Callable[[], None]) -> None:
        self._clock = clock
        self._t1, self._t2 = t1, t2
        self._on_retransmit = on_retransmit
        self._on_timeout = on_timeout
        self._response: Response | None = None
        self._cseq = 0
        self._dest: Addr = ("", 0)
        self._transport: Transport | None = None
        self._interval = 0.0
        self._timer_g: TimerHandle | None = None
        self._timer_h: TimerHandle | None = None

    @property
    def active(self) -> bool:
        """True while a 2xx waits for its ACK (or one of its timers is still scheduled)."""
        return self._response is not None or self._timer_g is not None or self._timer_h is not None

    def send(self, tx: ServerTransaction, response: Response) -> None:
        """Send ``response`` (a 2xx) through ``tx``, then retransmit it until :meth:`ack`."""
        self.stop()
        tx.respond(response)
        self._response = response
        self._cseq = response.cseq.seq
        self._dest = tx.dest
        self._transport = tx.transport
        if not tx.transport.reliable:
            self._interval = self._t1
            self._timer_g = self._clock.call_later(self._interval, self._retransmit)
        self._timer_h = self._clock.call_later(64 * self._t1, self._timeout)

    def ack(self, cseq: int) -> bool:
        """An ACK with CSeq number ``cseq`` arrived: stop and return True when it acknowledges the
        pending 2xx (False: no 2xx pending or another CSeq)."""
        if self._response is None or cseq != self._cseq:
            return False
        self.stop()
        return True

    def stop(self) -> None:
        """Forget the pending 2xx and cancel its timers."""
        self._response = None
        for handle in (self._timer_g, self._timer_h):
            if handle is not None:
                handle.cancel()
        self._timer_g = self._timer_h = None

    def _retransmit(self) -> None:
        self._timer_g = None
        if self._response is None or self._transport is None:
            return
        self._on_retransmit()
        try:
            self._transport.send(self._response.to_bytes(), self._dest)
        except OSError:
            pass
        self._interval = min(2 * self._interval, self._t2)
        self._timer_g = self._clock.call_later(self._interval, self._retransmit)

    def _timeout(self) -> None:
        self._timer_h = None
        if self._response is None:
            return
        self.stop()
        self._on_timeout()
