"""Sums several outbound sources into one stream (e.g. a ``talk`` player and a speaking)."""

from __future__ import annotations

from .codecs import Codec
from .pcm import mix_frames
from .sources import AudioSource


class Mixer(AudioSource):
    """An AudioSource whose frame is the clipped int16 sum of its sources' frames.

    Finished sources are removed. With one active source the mixer passes its frames (and
    pre-encoded payloads) through untouched. Never finishes by itself.
    """

    def __init__(self, *sources: AudioSource) -> None:
        self._sources: list[AudioSource] = list(sources)

    def __len__(self) -> int:
        """Number of sources being mixed (cheap: used on every tick)."""
        return len(self._sources)

    @property
    def sources(self) -> tuple[AudioSource, ...]:
        return tuple(self._sources)

    def add(self, source: AudioSource) -> AudioSource:
        """Start mixing ``source`` in; returns it."""
        if source not in self._sources:
            self._sources.append(source)
        return source

    def remove(self, source: AudioSource) -> None:
        if source in self._sources:
            self._sources.remove(source)

    def clear(self) -> None:
        self._sources.clear()

    def flush(self) -> None:
        """Flush every source (they decide whether they finish or stay, see each class)."""
        for source in list(self._sources):
            source.flush()
        self._prune()

    def _prune(self) -> None:
        self._sources[:] = [s for s in self._sources if not s.finished]  # in place: an RtpSession watches the list

    def read_frame(self) -> bytes | None:
        frames = []
        any_finished = False
        for source in self._sources:
            frame = source.read_frame()
            if frame is not None:
                frames.append(frame)
            any_finished = any_finished or source.finished
        if any_finished:
            self._prune()
        if not frames:
            return None
        if len(frames) == 1:
            return frames[0]
        return mix_frames(frames)

    def read_payload(self, codec: Codec) -> bytes | None:
        sources = self._sources
        if len(sources) == 1:  # the common case, once per stream per tick: the source's payload as is
            source = sources[0]
            payload = source.read_payload(codec)
            if source._finished:
                self._prune()
            return payload
        if not sources:
            return None
        frame = self.read_frame()
        return None if frame is None else codec.encode(frame)

