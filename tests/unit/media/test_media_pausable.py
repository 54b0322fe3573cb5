"""PausableSource: paused, nothing is read (the audio waits); resumed, it plays on from where it stopped."""

from __future__ import annotations

import numpy as np

from voipbin.media.codecs.g711 import PcmuCodec
from voipbin.media.pausable import PausableSource
from voipbin.media.players import BufferPlayer


def test_pause_holds_the_audio_and_resume_plays_on() -> None:
    pcm = np.concatenate([np.full(160, (i + 1) * 100, dtype=np.int16) for i in range(4)])
    source = PausableSource(BufferPlayer(pcm))
    first = source.read_frame()
    source.paused = True
    assert source.read_frame() is None and source.read_payload(PcmuCodec()) is None
    source.paused = False
    second = source.read_frame()
    assert np.frombuffer(first, "<i2")[0] == 100 and np.frombuffer(second, "<i2")[0] == 200  # type: ignore[arg-type]
    assert source.read_payload(PcmuCodec()) is not None and source.frames_out == 3
    assert source.read_frame() is not None
    assert source.finished  # the wrapped player played out
