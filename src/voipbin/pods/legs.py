"""Pod legs (issue 19): a SIP leg between two media pods, so that a call held by one pod takes part
in a conference mixed on another.

Why a leg and not a move: the call is answered already (its dialog, RTP port and flow live on the
pod Kamailio gave it to), so it cannot be handed over, and a redirect would need the caller's
cooperation; the pod that holds it *bridges* it to the room instead. One leg per remote participant
(not one per pod): each remote call is mixed as its own participant, so mix-minus stays exact and
kicks, mutes and transcripts stay per call. The cost, per remote participant: two more RTP streams
(64 kbit/s each way on loopback or the LAN, one RTP port on each pod), one more G.711 encode/decode
each way, and one more hop of latency (the relay on the holding pod, one media clock tick at least,
and the room's input queue for the leg): ``bench/pod_leg_cost.py`` measures both against a
participant held by the room's own pod.

The wire, from pod B (holds the call) to pod A (mixes the room, ``conferences.pod_id``)::

    INVITE sip:conference-<conference id>@<A's sip_host>:<A's sip_port> SIP/2.0
    From: <sip:<B's pod id>@<B's advertised host>>
    X-VoIPBIN-Conferencecall: <conferencecall id>      (the row B wrote, ``joining``)
    (SDP: our usual PCMU/PCMA/telephone-event offer)

A trusts such an INVITE only when it comes from the SIP address (``sip_host``, ``sip_port``) of a
live media pod in ``pods`` (a phone behind Kamailio arrives from Kamailio's address, which no pod
has, and Kamailio strips ``X-VoIPBIN-*`` headers from what phones send); the conference service
then checks that the conferencecall is ``joining`` a progressing conference A mixes, before the
leg is answered. Anything else is refused (403) and never becomes a call. So pods must reach each
other at the SIP address they heartbeat (``VOIPBIN_SIP_ADVERTISED_HOST`` or ``VOIPBIN_SIP_HOST``, and
``VOIPBIN_SIP_PORT``), and their packets must come from it (no NAT between pods).

What crosses the leg is the call's incoming side (its voice and any ``in`` speaking on it, as a
``connect`` bridge relays it): the room's pod cannot tell the two apart, so a room transcription
there hears such a speaking as that participant.

One :class:`PodLeg` is either end: its media once answered, ``ended`` once its dialog is over
(BYE either way, a refused INVITE, or no RTP from the other pod for ``rtp_timeout_s``: a leg
always carries RTP, silence included, so the runtime uses the pod expiry, 8 s: a participant whose
pod died leaves the room, and a call whose room's pod died leaves it and goes on with its flow).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import structlog

from voipbin.calls.hangup import Hangup
from voipbin.calls.inbound_leg import InboundLeg
from voipbin.calls.leg import DialTarget, Leg, Originator
from voipbin.common.errors import DomainError
from voipbin.media.ports import PortAllocator, PortsExhaustedError
from voipbin.media.sdp import NoCommonCodecError, SdpError, SessionDescription, create_answer
from voipbin.media.session import RtpSession
from voipbin.sip.invite_server import IncomingInvite
from voipbin.sip.message import Request

if TYPE_CHECKING:  # the directory reads the store's models (and their packages' services): typing only here
    from voipbin.pods.directory import PodDirectory

log = structlog.get_logger(__name__)

POD_LEG_HEADER = "X-VoIPBIN-Conferencecall"
"""The header naming the conferencecall a pod leg carries (trusted only from a live pod)."""

URI_USER_PREFIX = "conference-"
"""The Request-URI user of a pod leg: this prefix and the conference id."""

DIAL_TIMEOUT_S = 10.0
"""How long the pod that holds the call waits for the room's pod to answer its leg (seconds)."""


class PodLegFailed(Exception):
    """The room's pod did not take the leg (``status``: its final response, None for no answer)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class PodLeg:
    """One end of a pod leg; also the :class:`~voipbin.calls.leg.LegListener` of its SIP leg."""

    def __init__(self, rtp_timeout_s: float | None) -> None:
        self.leg: Leg | None = None
        self.answered = asyncio.Event()
        self.ended = asyncio.Event()
        self.result: Hangup | None = None
        self.status: int | None = None  # the final response of a refused INVITE
        self._rtp_timeout_s = rtp_timeout_s
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def media(self) -> RtpSession:
        """The leg's RTP session (only once answered)."""
        assert self.leg is not None and self.leg.media is not None, "the pod leg is not answered"
        return self.leg.media

    async def hangup(self) -> None:
        """BYE (CANCEL before the answer); ``ended`` follows. Nothing once ended."""
        if self.leg is None or self.ended.is_set():
            return
        await (self.leg.hangup() if self.answered.is_set() else self.leg.cancel())

    # ----------------------------------------------------------- LegListener

    def leg_ringing(self) -> None:
        pass

    def leg_answered(self) -> None:
        media = self.leg.media if self.leg is not None else None
        if media is not None and self._rtp_timeout_s:
            media.rtp_timeout_s = self._rtp_timeout_s  # the other pod died: the leg ends
            media.on_timeout = lambda _s: self._spawn(self.hangup())
        self.answered.set()

    def leg_ended(self, hangup: Hangup) -> None:
        self.result = hangup
        self.status = getattr(self.leg, "sip_status", None)
        self.ended.set()

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


TakeLeg = Callable[[str, str, Callable[[], Awaitable[PodLeg]]], Awaitable[None]]
"""``take(conference_id, conferencecall_id, answer)``: the room's side (the conference service)
checks the participant and raises a DomainError to refuse; else it awaits ``answer()`` (the 200),
puts the leg in the room and returns (the leg lives on in its own task)."""


class PodLegs:
    """Dials pod legs (the pod holding a call) and accepts them (the pod mixing the room).

    ``originator`` sends the INVITEs; ``directory`` says where a pod is and which sources are
    live pods; ``ports``/``rtp_host``/``advertised_host`` are this pod's RTP; ``take`` is the
    conference service's :meth:`~voipbin.conferences.service.ConferenceService.take_pod_leg`.
    """

    def __init__(self, directory: PodDirectory, originator: Originator, *, pod_id: str, ports: PortAllocator,
                 rtp_host: str, advertised_host: str, rtp_timeout_s: float | None,
                 dial_timeout_s: float = DIAL_TIMEOUT_S) -> None:
        self._directory = directory
        self._originator = originator
        self._pod_id = pod_id
        self._ports = ports
        self._rtp_host = rtp_host
        self._advertised_host = advertised_host
        self._rtp_timeout_s = rtp_timeout_s
        self._dial_timeout_s = dial_timeout_s
        self.take: TakeLeg | None = None

    # ----------------------------------------------------------- the pod that holds the call

    async def dial(self, pod_id: str, conference_id: str, conferencecall_id: str) -> PodLeg:
        """Place the leg of ``conferencecall_id`` to ``conference_id`` on pod ``pod_id`` and wait for
        its answer (at most ``dial_timeout_s``). Returns it answered; raises PodLegFailed when the pod
        has no SIP address, refuses it or does not answer (nothing is left behind)."""
        address = await self._directory.sip_address(pod_id)
        if address is None:
            raise PodLegFailed(f"pod {pod_id} has no SIP address")
        host, port = address
        uri = f"sip:{URI_USER_PREFIX}{conference_id}@{host}:{port}"
        end = PodLeg(self._rtp_timeout_s)
        target = DialTarget(request_uri=uri, to_uri=uri, from_uri=f"sip:{self._pod_id}@{self._advertised_host}",
                            destination=(host, port), headers={POD_LEG_HEADER: conferencecall_id})
        try:
            end.leg = await self._originator.originate(target, end)
        except OSError as exc:
            raise PodLegFailed(f"pod {pod_id} at {host}:{port} cannot be reached: {exc}") from None
        waits = [asyncio.ensure_future(end.answered.wait()), asyncio.ensure_future(end.ended.wait())]
        try:
            done, _ = await asyncio.wait(waits, timeout=self._dial_timeout_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
        if end.answered.is_set() and not end.ended.is_set():
            return end
        if not done:
            await end.hangup()
            raise PodLegFailed(f"pod {pod_id} did not answer within {self._dial_timeout_s:g}s")
        raise PodLegFailed(f"pod {pod_id} refused the leg ({end.status or 'no answer'})", end.status)

    # ----------------------------------------------------------- the pod that mixes the room

    @staticmethod
    def is_pod_leg(request: Request) -> bool:
        """Whether an INVITE says it is a pod leg (still to be trusted: :meth:`on_invite`)."""
        return request.headers.get(POD_LEG_HEADER) is not None

    async def on_invite(self, incoming: IncomingInvite) -> None:
        """An INVITE carrying :data:`POD_LEG_HEADER`: refused (403) unless it comes from a live media
        pod's SIP address, names a conference (404 otherwise) and the conference service takes it
        (its error's status: 404, 400); 488 without a common codec, 503 without an RTP port."""
        request = incoming.request
        user = request.uri.user or ""
        conferencecall_id = (request.headers.get(POD_LEG_HEADER) or "").strip()
        sender = await self._directory.pod_at(*incoming.source)
        if sender is None or sender == self._pod_id or self.take is None:
            log.warning("pod leg refused: not from a live media pod", source=incoming.source)
            incoming.reject(403, "Not From A Pod")
            return
        if not user.startswith(URI_USER_PREFIX) or not conferencecall_id:
            incoming.reject(404)
            return
        try:
            create_answer(SessionDescription.parse(incoming.remote_sdp or b""), self._advertised_host, 9)
        except NoCommonCodecError:
            incoming.reject(488)
            return
        except SdpError:
            incoming.reject(400, "Bad SDP")
            return

        async def answer() -> PodLeg:
            try:
                rtp = await RtpSession.open(self._rtp_host, self._ports)
            except (PortsExhaustedError, OSError) as exc:
                raise PodLegFailed(f"no RTP port: {exc}", 503) from None
            end = PodLeg(self._rtp_timeout_s)
            leg = InboundLeg(incoming, rtp, self._advertised_host)
            end.leg = leg
            leg.attach(end)
            await leg.answer()
            return end

        try:
            await self.take(user[len(URI_USER_PREFIX):], conferencecall_id, answer)
        except PodLegFailed as exc:
            incoming.reject(exc.status or 500)
        except DomainError as exc:  # not a joining participant of a room mixed here
            log.info("pod leg refused", from_pod=sender, conferencecall_id=conferencecall_id, reason=exc.message)
            if incoming.state == "pending":
                incoming.reject(404 if exc.http_status == 404 else 403, "Not A Joining Participant")
