"""Session timers (RFC 4028), free of I/O: header values and the negotiation rules.

:mod:`voipbin.sip.invite_client` asks for a session timer on every INVITE it sends (``Supported: timer``,
``Session-Expires: 1800;refresher=uac``, ``Min-SE``), retries a 422 with the peer's Min-SE
(§7.4), and once a 2xx (or the 2xx we send) fixes the interval and the refresher (§7.2, §9):

* the refresher sends a refresh (a re-INVITE with the same SDP) at half the interval (§10);
* the other side, if no refresh arrived, BYEs the dialog ``min(32, interval/3)`` seconds before it
  expires (§10).

``refresher`` in a header is relative to the transaction carrying it: ``uac`` is the sender of the
request. :class:`SessionTimer` stores it from our point of view (``we_refresh``).
"""

from __future__ import annotations

from dataclasses import dataclass

from voipbin.sip.errors import SipParseError
from voipbin.sip.message import Request, Response

DEFAULT_SESSION_EXPIRES_S = 1800  # §4: RECOMMENDED
MIN_SE_S = 90  # §4: the lowest Min-SE a UA may use
EXPIRY_MARGIN_MAX_S = 32.0  # §10: BYE min(32 s, interval/3) before the session expires
TIMER = "timer"  # option tag


@dataclass(frozen=True, slots=True)
class SessionExpires:
    """``Session-Expires: <delta-seconds>[;refresher=uac|uas]`` (§4)."""

    interval_s: int
    refresher: str | None = None  # "uac" | "uas" | None (not chosen yet)

    @classmethod
    def parse(cls, value: str) -> SessionExpires:
        """Raises SipParseError for a value that is not delta-seconds with an optional refresher."""
        parts = [p.strip() for p in value.split(";")]
        if not parts[0].isdigit():
            raise SipParseError(f"Bad Session-Expires {value!r}")
        refresher = None
        for param in parts[1:]:
            name, _, val = param.partition("=")
            if name.strip().lower() == "refresher":
                refresher = val.strip().lower()
                if refresher not in ("uac", "uas"):
                    raise SipParseError(f"Bad refresher {val!r}")
        return cls(int(parts[0]), refresher)

    def __str__(self) -> str:
        return f"{self.interval_s};refresher={self.refresher}" if self.refresher else str(self.interval_s)


def session_expires_of(message: Request | Response) -> SessionExpires | None:
    """The message's Session-Expires, or None when absent or malformed."""
    value = message.headers.get("Session-Expires")
    if value is None:
        return None
    try:
        return SessionExpires.parse(value)
    except SipParseError:
        return None


def min_se_of(message: Request | Response) -> int | None:
    """The Min-SE delta-seconds (§5), or None."""
    value = (message.headers.get("Min-SE") or "").split(";")[0].strip()
    return int(value) if value.isdigit() else None


def supports_timer(message: Request | Response) -> bool:
    """Whether ``Supported`` or ``Require`` lists the ``timer`` option tag."""
    tags = ",".join(message.headers.get_all("Supported") + message.headers.get_all("Require"))
    return TIMER in {t.strip().lower() for t in tags.split(",")}


@dataclass(frozen=True, slots=True)
class SessionTimer:
    """A negotiated session timer: ``interval_s`` and whether we are the refresher."""

    interval_s: int
    we_refresh: bool

    @property
    def refresh_after_s(self) -> float:
        """When the refresher sends its refresh (§10: half the interval)."""
        return self.interval_s / 2

    @property
    def expire_after_s(self) -> float:
        """When the side that does not refresh gives up and BYEs (§10)."""
        return self.interval_s - min(EXPIRY_MARGIN_MAX_S, self.interval_s / 3)

    def header_for_request(self) -> SessionExpires:
        """Session-Expires for a refresh or re-INVITE we send (``uac`` = us)."""
        return SessionExpires(self.interval_s, "uac" if self.we_refresh else "uas")


def from_2xx(response: Response) -> SessionTimer | None:
    """UAC side (§7.2): the 2xx to our (re-)INVITE. No Session-Expires: no session timer.
    ``refresher=uac`` (or none given, §7.2 lets the UAC choose itself) makes us the refresher."""
    se = session_expires_of(response)
    if se is None:
        return None
    return SessionTimer(se.interval_s, we_refresh=se.refresher in (None, "uac"))


def for_2xx_we_send(request: Request, min_se_s: int) -> SessionTimer | None:
    """UAS side (§9): the session timer our 2xx establishes for ``request``, or None when the
    request asks for none. The requester keeps the refresher role it took; when it chose none,
    it refreshes if it supports timers, else we do."""
    se = session_expires_of(request)
    if se is None:
        return None
    interval = max(se.interval_s, min_se_s)
    if se.refresher == "uac":
        return SessionTimer(interval, we_refresh=False)
    if se.refresher == "uas":
        return SessionTimer(interval, we_refresh=True)
    return SessionTimer(interval, we_refresh=not supports_timer(request))


def header_in_2xx(timer: SessionTimer) -> SessionExpires:
    """Session-Expires for the 2xx we send (``uac`` = the requester, the other side)."""
    return SessionExpires(timer.interval_s, "uas" if timer.we_refresh else "uac")


def too_small(request: Request, min_se_s: int) -> bool:
    """§9: a request whose Session-Expires is below our Min-SE gets 422."""
    se = session_expires_of(request)
    return se is not None and se.interval_s < min_se_s
