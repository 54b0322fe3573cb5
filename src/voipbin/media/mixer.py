"""Sums several outbound sources into one stream (e.g. a ``talk`` player and a speaking)."""

from __future__ import annotations

from .codecs import Codec
from .pcm import mix_frames
from .sources import AudioSource


class Mixer(AudioSource):
    """An AudioSource whose frame is the clipped int16 sum of its sources' frames.

    Finished sources are removed. With one active source the mixer passes its frames (and
    pre-encoded payloads) through untouched: that source is :attr:`passthrough`, which the RTP
    session's tick reads from directly (no call into the mixer for the common case, once per stream
    per 20 ms). Never finishes by itself.
    """

    __slots__ = ("passthrough", "finished", "_sources", "_done")

    def __init__(self, *sources: AudioSource) -> None:
        self.finished = False
        self._done = None
        self._sources: list[AudioSource] = list(sources)
        #: the one source whose payloads go out as they are (exactly one source and nothing changes its
        #: audio), else None: read it, then :meth:`prune` once it is ``finished``
        self.passthrough: AudioSource | None = None
        self._update_passthrough()

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
            self._update_passthrough()
        return source

    def remove(self, source: AudioSource) -> None:
        if source in self._sources:
            self._sources.remove(source)
            self._update_passthrough()

    def clear(self) -> None:
        self._sources.clear()
        self._update_passthrough()

    def flush(self) -> None:
        """Flush every source (they decide whether they finish or stay, see each class)."""
        for source in list(self._sources):
            source.flush()
        self.prune()

    def prune(self) -> None:
        """Drop the finished sources."""
        self._sources[:] = [s for s in self._sources if not s.finished]  # in place: an RtpSession watches the list
        self._update_passthrough()

    def _passes_through(self) -> bool:
        """Whether a single source's payloads may go out untouched (subclasses that change the audio say no)."""
        return True

    def _update_passthrough(self) -> None:
        self.passthrough = self._sources[0] if len(self._sources) == 1 and self._passes_through() else None

    def read_frame(self) -> bytes | None:
        frames = []
        any_finished = False
        for source in self._sources:
            frame = source.read_frame()
            if frame is not None:
                frames.append(frame)
            any_finished = any_finished or source.finished
        if any_finished:
            self.prune()
        if not frames:
            return None
        if len(frames) == 1:
            return frames[0]
        return mix_frames(frames)

    def read_payload(self, codec: Codec) -> bytes | None:
        source = self.passthrough
        if source is not None:  # the common case: the source's payload as is
            payload = source.read_payload(codec)
            if source.finished:
                self.prune()
            return payload
        if not self._sources:
            return None
        frame = self.read_frame()
        return None if frame is None else codec.encode(frame)
