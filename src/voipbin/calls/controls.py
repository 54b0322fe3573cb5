"""Hold, mute and music on hold of one answered call, applied to its RTP session.

The call's outbound mixer is replaced (once, on answer) by a :class:`GatedMixer`: its sources
keep playing in time, but while the call is held or muted ``out`` the endpoint hears silence,
or the music-on-hold source when one is on. ``in`` mute and hold stop the endpoint's audio
from reaching the call it is bridged to (see :mod:`voipbin.calls.bridge`).
"""

from __future__ import annotations

import math

import numpy as np

from voipbin.media.codecs import Codec
from voipbin.media.mixer import Mixer
from voipbin.media.session import RtpSession
from voipbin.media.sources import FRAME_BYTES, SAMPLE_RATE_HZ, AudioSource

MUTE_DIRECTIONS = ("in", "out", "both")
MOH_LEVEL = 0.2  # of full scale: background music, not a test tone
MOH_NOTE_SECONDS = 0.4
MOH_NOTES_HZ = (392.0, 440.0, 523.25, 440.0, 349.23, 392.0, 329.63, 293.66)  # a gentle loop


class GatedMixer(Mixer):
    """A :class:`Mixer` that can be silenced (``gated``) or replaced by an ``override`` source."""

    def __init__(self, *sources: AudioSource) -> None:
        super().__init__(*sources)
        self.gated = False
        self.override: AudioSource | None = None

    def read_frame(self) -> bytes | None:
        frame = super().read_frame()  # sources advance in time either way
        if self.override is not None:
            return self.override.read_frame()
        return None if self.gated else frame

    def read_payload(self, codec: Codec) -> bytes | None:
        if self.override is None and not self.gated:
            return super().read_payload(codec)
        frame = self.read_frame()
        return None if frame is None else codec.encode(frame)


class MusicOnHold(AudioSource):
    """A generated, looping melody of soft sine notes with short fades (no file to ship)."""

    def __init__(self) -> None:
        notes = []
        samples = int(MOH_NOTE_SECONDS * SAMPLE_RATE_HZ)
        t = np.arange(samples) / SAMPLE_RATE_HZ
        fade = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.03)
        for hz in MOH_NOTES_HZ:
            notes.append(np.sin(2 * math.pi * hz * t) * fade * MOH_LEVEL * 32767)
        pcm = np.concatenate(notes).astype("<i2").tobytes()
        usable = len(pcm) - len(pcm) % FRAME_BYTES
        self._pcm = pcm[:usable]
        self._pos = 0

    def read_frame(self) -> bytes:
        frame = self._pcm[self._pos:self._pos + FRAME_BYTES]
        self._pos = (self._pos + FRAME_BYTES) % len(self._pcm)
        return frame


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
