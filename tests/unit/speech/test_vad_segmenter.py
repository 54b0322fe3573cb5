"""VadSegmenter driven by a scripted detector: a window is speech when it is loud."""

import numpy as np

from voipbin.speech.stt.vad import (
    WINDOW_BYTES,
    WINDOW_S,
    VadEnd,
    VadPause,
    VadResume,
    VadSegmenter,
    VadStart,
)


def loudness_detector(window: np.ndarray) -> float:
    return 1.0 if np.abs(window).max() > 0.1 else 0.0


def windows(pattern: str) -> bytes:
    """'#' = a loud window, '.' = a silent one."""
    loud = (np.ones(512) * 16000).astype("<i2").tobytes()
    quiet = bytes(WINDOW_BYTES)
    return b"".join(loud if c == "#" else quiet for c in pattern)


def segmenter() -> VadSegmenter:
    return VadSegmenter(
        loudness_detector, min_speech_ms=96, min_silence_ms=320, speech_pad_ms=64, tail_pad_ms=64
    )


def test_utterance_start_pause_end_in_order_with_offsets() -> None:
    seg = segmenter()
    events = seg.process(windows("....########" + "." * 12))
    assert [type(e) for e in events] == [VadStart, VadPause, VadEnd]
    start, pause, end = events
    assert start.offset_s == 4 * WINDOW_S
    assert pause.offset_s == end.end_s == 12 * WINDOW_S
    assert end.start_s == 4 * WINDOW_S
    # audio: 2 windows of pad + 8 of speech + 2 of tail
    assert len(end.audio) == 12 * WINDOW_BYTES
    assert pause.audio == end.audio
    assert not seg.in_speech


def test_short_pause_resumes_the_same_utterance() -> None:
    seg = segmenter()
    events = seg.process(windows("#####....#####" + "." * 12))
    assert [type(e) for e in events] == [VadStart, VadPause, VadResume, VadPause, VadEnd]
    assert events[-1].end_s == 14 * WINDOW_S


def test_a_click_shorter_than_min_speech_is_ignored() -> None:
    assert segmenter().process(windows("..##......")) == []


def test_input_of_any_length_is_windowed_consistently() -> None:
    pcm = windows("....########" + "." * 12)
    seg = segmenter()
    events = []
    for i in range(0, len(pcm), 640):  # 20 ms frames, not 32 ms windows
        events += seg.process(pcm[i : i + 640])
    assert [type(e) for e in events] == [VadStart, VadPause, VadEnd]


def test_flush_ends_an_utterance_in_progress() -> None:
    seg = segmenter()
    assert [type(e) for e in seg.process(windows("######"))] == [VadStart]
    (end,) = seg.flush()
    assert isinstance(end, VadEnd) and end.end_s == 6 * WINDOW_S
    assert seg.flush() == []


def test_max_utterance_cuts_long_speech() -> None:
    seg = VadSegmenter(loudness_detector, max_utterance_s=20 * WINDOW_S)
    events = seg.process(windows("#" * 45))
    assert [type(e) for e in events].count(VadEnd) == 2
