"""The outbound audio seam: what an RTP session sends on each clock tick.

A source yields one 20 ms PCM16 frame (``FRAME_BYTES``: 320 bytes at 8000 Hz, see
:mod:`voipbin.media.pcm`) per call of :meth:`AudioSource.read_frame`, or None when it has
nothing to say this tick.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod

from .codecs import Codec

__all__ = ["AudioSource"]


class AudioSource(ABC):
    """One outbound audio source. Called from the media clock tick: must not block.

    Subclasses without ``__slots__`` get a ``__dict__`` as usual; the ones on the send path of every packet
    (Mixer, BufferPlayer) declare slots, ``finished`` and ``_done`` among them, and set both in ``__init__``.
    """

    __slots__ = ()
    _done: asyncio.Event | None = None
    #: True once the source will never produce audio again (a mixer then drops it); set by ``_finish()``
    #: only. A plain attribute, not a property: the send path reads it for every packet
    finished: bool = False

    @abstractmethod
    def read_frame(self) -> bytes | None:
        """The next 20 ms of PCM16 LE mono (``FRAME_BYTES`` bytes), or None for nothing (silence)."""

    def read_payload(self, codec: Codec) -> bytes | None:
        """The next frame encoded with ``codec`` (sources that pre-encode override this)."""
        frame = self.read_frame()
        return None if frame is None else codec.encode(frame)

    def flush(self) -> None:
        """Drop everything queued; the next read returns silence (barge-in)."""

    def _finish(self) -> None:
        self.finished = True
        if self._done is not None:
            self._done.set()

    async def wait(self) -> None:
        """Wait until the source has finished (played out, flushed or stopped)."""
        if self.finished:
            return
        if self._done is None:
            self._done = asyncio.Event()
        await self._done.wait()
