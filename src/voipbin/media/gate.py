"""A mixer whose output can be silenced or replaced: hold, ``out`` mute and music on hold.

A call's outbound mixer is replaced (once, on answer) by a :class:`GatedMixer`: its sources
keep playing in time, but while ``gated`` the endpoint hears silence (no payload), or the
``override`` source (music on hold) when one is set. Used by :mod:`voipbin.calls.controls`.
"""

from __future__ import annotations

from voipbin.media.codecs import Codec
from voipbin.media.mixer import Mixer
from voipbin.media.sources import AudioSource


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
