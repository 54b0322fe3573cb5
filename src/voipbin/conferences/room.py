"""A conference as this process mixes it: :class:`Room`, its participants and who listens to them.

The audio is a :class:`~voipbin.media.conference.ConferenceMixer` (mix-minus on the media clock:
each participant hears every other participant and the room's announcements, never itself). A
:class:`Participant` is one answered call in the room; ``released`` is set when it must leave
while its call goes on (``DELETE /conferencecalls/{id}``, the conference ending, the other party
of a ``connect`` room leaving).

Listeners (:meth:`Room.add_listener`): a transcription of the room learns of every participant
joining or leaving, so speech of a participant who joins later is transcribed from that moment.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Protocol

from voipbin.calls.controls import MediaControls
from voipbin.media.conference import ConferenceMixer
from voipbin.media.session import RtpSession

logger = logging.getLogger(__name__)


class RoomListener(Protocol):
    """Told of membership changes (called on the event loop; must not block)."""

    def participant_joined(self, call_id: str, media: RtpSession) -> None: ...

    def participant_left(self, call_id: str) -> None: ...


@dataclass
class Participant:
    """One call in the room: its conferencecall, the call's id and the RTP session mixed here (the
    call's own, or the pod leg of a call another pod holds: :mod:`voipbin.pods.legs`), and its
    hold/mute ``controls`` (None for a pod leg: the holding pod applies them to its bridge)."""

    conferencecall_id: str
    call_id: str
    media: RtpSession
    controls: MediaControls | None = None
    released: asyncio.Event = field(default_factory=asyncio.Event)


class Room:
    """The live side of one conference in this process: the mixer and the calls in it."""

    def __init__(self, conference_id: str, customer_id: str, kind: str, mixer: ConferenceMixer | None = None) -> None:
        self.conference_id = conference_id
        self.customer_id = customer_id
        self.kind = kind
        self.mixer = mixer or ConferenceMixer()
        self.participants: dict[str, Participant] = {}  # by call id
        self.joining: dict[str, str] = {}  # call id -> conferencecall id, before the audio is connected
        self._listeners: list[RoomListener] = []
        self.closed = False

    def add_listener(self, listener: RoomListener) -> None:
        """Tell ``listener`` of every later join and leave (existing participants: see ``participants``)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: RoomListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def connect(self, participant: Participant) -> None:
        """Put the call's audio into the room (hold and ``in`` mute keep its audio out, hold also
        keeps the room's audio from it: :mod:`voipbin.calls.controls`)."""
        controls = participant.controls
        self.mixer.join(participant.call_id, participant.media,
                        sends=lambda: controls is None or controls.sends_to_peer,
                        hears=lambda: controls is None or controls.hears_peer)
        self.joining.pop(participant.call_id, None)
        self.participants[participant.call_id] = participant
        for listener in list(self._listeners):
            try:
                listener.participant_joined(participant.call_id, participant.media)
            except Exception:
                logger.exception("room listener failed on join")

    def disconnect(self, call_id: str) -> Participant | None:
        """Take the call's audio out of the room (idempotent); the others go on undisturbed."""
        self.joining.pop(call_id, None)
        participant = self.participants.pop(call_id, None)
        if participant is None:
            return None
        self.mixer.leave(call_id)
        for listener in list(self._listeners):
            try:
                listener.participant_left(call_id)
            except Exception:
                logger.exception("room listener failed on leave")
        return participant

    def release_all(self) -> None:
        """Ask every participant to leave (their calls go on with their flows)."""
        for participant in self.participants.values():
            participant.released.set()

    def close(self) -> None:
        """Disconnect everyone and stop mixing."""
        for call_id in list(self.participants):
            self.disconnect(call_id)
        self.mixer.close()
        self.closed = True

    def __len__(self) -> int:
        return len(self.participants) + len(self.joining)
