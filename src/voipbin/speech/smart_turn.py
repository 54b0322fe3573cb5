"""End-of-turn detection: has the speaker finished their turn, or only paused mid-sentence?

The model is Pipecat's smart-turn v3.2 (``smart-turn-v3.2-cpu.onnx``, 8.7 MB, BSD-2-Clause), taken
from the ``pipecat-ai`` wheel's package data (installed ``--no-deps`` by the Makefile: nothing of
Pipecat is imported, nothing is downloaded). Input: the last 8 s of the turn's audio, ending about
0.2 s into the silence that follows it (the VAD stop the model was trained with), as Whisper log-mel
features (80 x 800, computed with faster-whisper's extractor, zero-mean unit-variance waveform first,
as the model's reference does). Output: the probability that the turn is complete.

Cost, measured on this 2-core machine: ~75 ms of features + ~60-180 ms of inference (one thread).
It runs on :data:`SMART_TURN_EXECUTOR` (one thread per process: onnxruntime and numpy's FFT release
the GIL), never on the event loop.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soxr

from voipbin.media.pcm import pcm16_to_float
from voipbin.speech.audio import STT_SAMPLE_RATE

WINDOW_S = 8
"""Seconds of audio the model looks at (the turn's end, zero-padded in front when shorter)."""
COMPLETE = 0.5
"""Probability at or above which the turn is complete (the model's own threshold)."""
SMART_TURN_EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="smart-turn")


def bundled_model() -> Path:
    """The ONNX file inside the installed ``pipecat-ai`` package (found without importing it).

    Raises:
        FileNotFoundError: pipecat-ai is not installed (``make install`` installs it).
    """
    spec = importlib.util.find_spec("pipecat")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("smart turn: the pipecat-ai package (its bundled model) is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / "audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"
    if not path.is_file():
        raise FileNotFoundError(f"smart turn: no model at {path}")
    return path


@functools.lru_cache(maxsize=2)
def _session(model: Path) -> object:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    options.intra_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(model), sess_options=options)


@functools.lru_cache(maxsize=1)
def _features() -> object:
    from faster_whisper.feature_extractor import FeatureExtractor

    return FeatureExtractor(feature_size=80, sampling_rate=STT_SAMPLE_RATE, chunk_length=WINDOW_S)


def turn_complete_probability(pcm: bytes, sample_rate: int = STT_SAMPLE_RATE, model: Path | None = None) -> float:
    """The probability (0-1) that the turn whose end ``pcm`` holds is complete. Blocking: call it on
    :data:`SMART_TURN_EXECUTOR`.

    Args:
        pcm: PCM16 mono at ``sample_rate`` Hz (resampled to 16 kHz), the turn's audio up to now
            (only its last 8 s are used).
        model: an ONNX file of the same interface (default: :func:`bundled_model`).
    """
    audio = pcm16_to_float(pcm)
    if sample_rate != STT_SAMPLE_RATE:
        audio = soxr.resample(audio, sample_rate, STT_SAMPLE_RATE)
    audio = audio[-WINDOW_S * STT_SAMPLE_RATE:]
    audio = np.pad(audio, (WINDOW_S * STT_SAMPLE_RATE - len(audio), 0))
    audio = (audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)
    features = _features()(audio, padding=0)[None].astype(np.float32)  # type: ignore[operator]
    session = _session(model or bundled_model())
    return float(session.run(None, {"input_features": features})[0][0].item())  # type: ignore[attr-defined]


async def is_turn_complete(pcm: bytes, sample_rate: int = STT_SAMPLE_RATE) -> bool:
    """:func:`turn_complete_probability` off the event loop, against :data:`COMPLETE`."""
    loop = asyncio.get_running_loop()
    probability = await loop.run_in_executor(SMART_TURN_EXECUTOR, turn_complete_probability, pcm, sample_rate)
    return probability >= COMPLETE
