"""An AI's ``vad_config`` reaches the segmenter that listens to its caller."""

from __future__ import annotations

from voipbin.ai.talk import vad_tuning
from voipbin.speech.settings import SpeechSettings
from voipbin.speech.stt.base import VadTuning
from voipbin.speech.stt.vad import LocalVad
from voipbin.speech.stt.whisper import WhisperRecognizer


def test_omitted_fields_take_upstream_defaults() -> None:
    assert vad_tuning({}) == VadTuning(threshold=0.7, min_speech_s=0.2, min_silence_s=0.2, interim=False)
    assert vad_tuning({"stop_secs": 0.5, "confidence": 0.4}) == VadTuning(threshold=0.4, min_speech_s=0.2,
                                                                          min_silence_s=0.5, interim=False)


def test_tuning_overrides_only_what_it_names() -> None:
    assert VadTuning(min_silence_s=0.2).settings_update() == {"vad_min_silence_ms": 200}
    assert vad_tuning({}).settings_update() == {"vad_threshold": 0.7, "vad_min_speech_ms": 200,
                                                "vad_min_silence_ms": 200}


async def test_a_stream_opened_with_a_tuning_segments_with_it() -> None:
    settings = SpeechSettings(vad_worker_mode="thread", vad_min_silence_ms=288, vad_threshold=0.5)
    recognizer = WhisperRecognizer(settings)
    tuned = recognizer.open_stream(language="en-US", sample_rate=8000, vad=vad_tuning({"stop_secs": 0.5}))
    plain = recognizer.open_stream(language="en-US", sample_rate=8000)
    try:
        assert isinstance(tuned._vad, LocalVad) and isinstance(plain._vad, LocalVad)
        # 32 ms windows: 0.5 s -> 16 windows, 288 ms -> 9; the threshold follows confidence 0.7
        assert tuned._vad.segmenter._min_silence == 16 and tuned._vad.segmenter._threshold == 0.7
        assert plain._vad.segmenter._min_silence == 9 and plain._vad.segmenter._threshold == 0.5
        # the AI's turn loop reads no interim text: its stream decodes none (a transcribe's does)
        assert tuned._interim_interval_s is None and plain._interim_interval_s == 1.0
    finally:
        await tuned.aclose()
        await plain.aclose()
        await recognizer.aclose()  # the worker pools open_stream started
