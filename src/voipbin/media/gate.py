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

    __slots__ = ("_gated", "_override")

    def __init__(self, *sources: AudioSource) -> None:
        self._gated = False
        self._override: AudioSource | None = None
        super().__init__(*sources)

    @property
    def gated(self) -> bool:
        """While True the endpoint hears silence (or the override); the sources go on in time."""
        return self._gated

    @gated.setter
    def gated(self, value: bool) -> None:
        self._gated = value
        self._update_passthrough()

    @property
    def override(self) -> AudioSource | None:
        """A source heard instead of the mixed ones (music on hold), or None."""
        return self._override

    @override.setter
    def override(self, source: AudioSource | None) -> None:
        self._override = source
        self._update_passthrough()

    def _passes_through(self) -> bool:
        return self._override is None and not self._gated

    def read_frame(self) -> bytes | None:
        frame = super().read_frame()  # sources advance in time either way
        if self._override is not None:
            return self._override.read_frame()
        return None if self._gated else frame

    def read_payload(self, codec: Codec) -> bytes | None:
        if self._override is None and not self._gated:
            return super().read_payload(codec)
        frame = self.read_frame()
        return None if frame is None else codec.encode(frame)
