"""Which source an RTP session accepts packets from, and where it sends (RTP hijack defence).

The rule, as rtpengine applies it (``learning`` then ``strict-source``) behind Kamailio's NAT
handling, on top of symmetric RTP (RFC 4961 §3: a NATed endpoint receives where it sends from):

1. **Reachable SDP address** (a global address, or loopback): packets are accepted only from
   exactly the (address, port) the SDP names, and RTP is sent there. There is no latching.
2. **Private or unreachable SDP address** (RFC 1918, RFC 6598 shared ``100.64/10``, link-local,
   unique-local, unspecified, documentation ranges, or not an IP literal): the endpoint is behind
   NAT and its packets come from an address its SDP cannot name. The session *latches* once, to
   the first source that sends :data:`LATCH_CONFIRM_PACKETS` packets with one SSRC within
   :data:`LATCH_WINDOW_S` of the first packet received (packets from the SDP address itself are
   taken at once). From then on only that source is accepted and RTP goes to it. When no source is
   confirmed within the window, only the SDP address is accepted.
3. A *new* SDP address (a re-INVITE that moves the stream) starts again at 1 or 2. Repeating the
   same address, or an old-style ``c=0.0.0.0`` hold, keeps what was learnt: a NATed phone repeats
   its private address on every re-INVITE.

Nothing else moves the stream: a packet from any other source is dropped before the jitter
buffer, the inbound consumers (STT, bridges) and the inactivity timer, and counted by the session
(``RtpStats.packets_foreign_source``). Packets of an unconfirmed source are dropped too, so at
most ``LATCH_CONFIRM_PACKETS - 1`` packets (40 ms) of a NATed endpoint are lost at the start.
"""

from __future__ import annotations

import ipaddress
import socket

Address = tuple[str, int]

#: a NATed endpoint must be confirmed within this time after the first packet arrives (seconds)
LATCH_WINDOW_S = 3.0
#: packets in a row, one SSRC, from one source, that confirm it as the endpoint behind NAT
LATCH_CONFIRM_PACKETS = 3
#: sources tracked at once while learning (a spoofing flood cannot grow the table)
MAX_CANDIDATES = 16


def is_reachable(host: str) -> bool:
    """True when ``host`` (an SDP ``c=`` address) can be sent to as written: a global unicast
    address or loopback. Private, shared (CGNAT), link-local, unspecified, reserved or
    documentation addresses, and names that are not IP literals, are not."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or (ip.is_global and not ip.is_multicast)


def _key(address: Address) -> tuple[bytes | str, int]:
    """``address`` compared by its binary IP (``::1`` and ``0:0::1`` are one host), cheaply."""
    host, port = address
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            return socket.inet_pton(family, host), port
        except OSError:
            continue
    return host.lower(), port


class SourceFilter:
    """The source policy of one RTP session (see the module docstring). Pure state: no I/O.

    ``latching=False`` never latches (rule 1 for every address). Time is the caller's
    monotonic clock in seconds, passed to :meth:`accept`.
    """

    def __init__(self, *, latching: bool = True, window_s: float = LATCH_WINDOW_S,
                 confirm_packets: int = LATCH_CONFIRM_PACKETS) -> None:
        self.latching = latching
        self.window_s = window_s
        self.confirm_packets = max(1, confirm_packets)
        self.sdp_address: Address | None = None
        #: the source latched onto (as packets came from it), once confirmed
        self.latched: Address | None = None
        self._sdp_key: tuple[bytes | str, int] | None = None
        self._latched_key: tuple[bytes | str, int] | None = None
        self._learning = False
        self._deadline: float | None = None
        self._candidates: dict[tuple[bytes | str, int], tuple[int, int]] = {}

    def reset(self, sdp_address: Address | None) -> None:
        """A new SDP address: forget what was learnt; learn again only if it is not reachable."""
        self.sdp_address = sdp_address
        self._sdp_key = _key(sdp_address) if sdp_address is not None else None
        self.latched = self._latched_key = None
        self._deadline = None
        self._candidates.clear()
        self._learning = self.latching and sdp_address is not None and not is_reachable(sdp_address[0])

    @property
    def learning(self) -> bool:
        """True while a NATed endpoint may still be latched onto."""
        return self._learning

    @property
    def candidate_count(self) -> int:
        """Sources being counted while learning (at most :data:`MAX_CANDIDATES`)."""
        return len(self._candidates)

    @property
    def send_address(self) -> Address | None:
        """Where RTP goes: the latched source once there is one, else the SDP address."""
        return self.latched or self.sdp_address

    def accept(self, address: Address, ssrc: int, now: float) -> bool:
        """Whether a packet from ``address`` with ``ssrc`` arriving at ``now`` is the endpoint's."""
        if address == self.latched or (self.latched is None and address == self.sdp_address and not self._learning):
            return True  # the per-packet fast path: the address exactly as accepted before
        key = _key(address)
        if self._latched_key is not None:
            return key == self._latched_key
        if key == self._sdp_key:
            if self._learning:
                self._latch(address, key)
            return True
        if not self._learning:
            return False
        if self._deadline is None:
            self._deadline = now + self.window_s
        elif now > self._deadline:
            self._learning = False
            self._candidates.clear()
            return False
        previous = self._candidates.get(key)
        if previous is None and len(self._candidates) >= MAX_CANDIDATES:
            return False
        count = previous[1] + 1 if previous is not None and previous[0] == ssrc else 1
        if count >= self.confirm_packets:
            self._latch(address, key)
            return True
        self._candidates[key] = (ssrc, count)
        return False

    def _latch(self, address: Address, key: tuple[bytes | str, int]) -> None:
        self.latched, self._latched_key = address, key
        self._learning = False
        self._candidates.clear()
