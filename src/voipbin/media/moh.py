"""Music on hold: a generated, looping melody (no audio file to ship).

Soft sine notes (:data:`MOH_NOTES_HZ`, :data:`MOH_NOTE_SECONDS` each, 30 ms fades) at
:data:`MOH_LEVEL` of full scale, as 8 kHz PCM16 frames of 20 ms.
"""

from __future__ import annotations

import math

import numpy as np

from voipbin.media.pcm import FRAME_BYTES, SAMPLE_RATE_HZ
from voipbin.media.sources import AudioSource

MOH_LEVEL = 0.2  # of full scale: background music, not a test tone
MOH_NOTE_SECONDS = 0.4
MOH_NOTES_HZ = (392.0, 440.0, 523.25, 440.0, 349.23, 392.0, 329.63, 293.66)  # a gentle loop


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
