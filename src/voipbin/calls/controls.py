"""Hold, mute and music on hold of one answered call, applied to its RTP session.

The call's outbound mixer is replaced (once, on answer) by a :class:`~voipbin.media.gate.GatedMixer`:
its sources keep playing in time, but while the call is held or muted ``out`` the endpoint hears
silence, or music on hold (:class:`~voipbin.media.moh.MusicOnHold`) when it is on. ``in`` mute
and hold stop the endpoint's audio from reaching the call it is bridged to (see
:mod:`voipbin.calls.bridge`).
"""

from __future__ import annotations

from voipbin.media.gate import GatedMixer
from voipbin.media.moh import MusicOnHold
from voipbin.media.session import RtpSession

MUTE_DIRECTIONS = ("in", "out", "both")


class MediaControls:
    """Hold / mute / MOH state of one answered call (``mute_direction`` as the spec's enum)."""

    def __init__(self, media: RtpSession) -> None:
        self.media = media
        gated = GatedMixer(*media.outbound.sources)
        media.outbound = gated
        self._mixer = gated
        self.held = False
        self.mute_direction = ""
        self.moh: MusicOnHold | None = None

    @property
    def sends_to_peer(self) -> bool:
        """Whether the endpoint's audio may reach the call it is bridged to."""
        return not self.held and self.mute_direction not in ("in", "both")

    @property
    def hears_peer(self) -> bool:
        """Whether the endpoint hears the call it is bridged to."""
        return not self.held

    def hold(self, on: bool) -> None:
        self.held = on
        self._apply()

    def mute(self, direction: str) -> None:
        """Mute ``direction`` (``in``/``out``/``both``) or unmute with ``""``."""
        self.mute_direction = direction
        self._apply()

    def music_on_hold(self, on: bool) -> None:
        self.moh = MusicOnHold() if on else None
        self._apply()

    def _apply(self) -> None:
        self._mixer.gated = self.held or self.mute_direction in ("out", "both")
        self._mixer.override = self.moh
