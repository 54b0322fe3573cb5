"""What runs inside the speech worker processes (see `voipbin.speech.workers`).

Plain module-level functions, picklable by reference: an initializer loads a model into
this module's globals once per worker; the job functions take and return plain data
(PCM16 bytes, text, VAD events). Nothing here touches the event loop. The same functions
run on threads in ``thread`` mode (the models are then shared by the process).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

from voipbin.speech.audio import pcm16_to_float

# --- faster-whisper ---------------------------------------------------------------------


@dataclass(frozen=True)
class WhisperOptions:
    """How a model is loaded and decoded (a hashable key: one loaded model per value)."""

    model: str
    compute_type: str = "int8"
    cpu_threads: int = 0
    beam_size: int = 1
    max_new_tokens: int | None = None


@functools.lru_cache(maxsize=4)
def load_whisper(model: str, compute_type: str, cpu_threads: int) -> object:
    """Load a faster-whisper model once per process (path or locally cached name)."""
    from faster_whisper import WhisperModel

    return WhisperModel(
        model, device="cpu", compute_type=compute_type, cpu_threads=cpu_threads, local_files_only=True
    )


def init_whisper(options: WhisperOptions) -> None:
    """Worker initializer: load the model and run it once (the first real job is not slower)."""
    transcribe(options, b"\x00\x00" * 8000, "en")


def transcribe(options: WhisperOptions, pcm: bytes, language: str) -> str:
    """16 kHz PCM16 of one utterance -> its text."""
    if not pcm:
        return ""
    model = load_whisper(options.model, options.compute_type, options.cpu_threads)
    segments, _info = model.transcribe(  # type: ignore[attr-defined]
        pcm16_to_float(pcm),
        language=language,
        beam_size=options.beam_size,
        temperature=0.0,  # no fallback re-decoding at higher temperatures: one pass, bounded time
        without_timestamps=True,
        condition_on_previous_text=False,
        vad_filter=False,
        max_new_tokens=options.max_new_tokens,
    )
    return " ".join(segment.text.strip() for segment in segments).strip()


def whisper_is_multilingual(model: str) -> bool:
    """Whether a CTranslate2 Whisper model knows languages other than English, without
    loading it: multilingual vocabularies have 51865 tokens or more, ``*.en`` ones 51864."""
    path = Path(model)
    if not path.is_dir():
        from faster_whisper.utils import download_model

        path = Path(download_model(model, local_files_only=True))
    txt, js = path / "vocabulary.txt", path / "vocabulary.json"
    if txt.exists():
        with txt.open(encoding="utf-8") as fh:
            return sum(1 for _ in fh) >= 51865
    if js.exists():
        return len(json.loads(js.read_text(encoding="utf-8"))) >= 51865
    return not path.name.endswith(".en")


# --- piper -----------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def load_piper(model_path: str, threads: int = 0) -> object:
    """Load a Piper ONNX voice (``<model>.onnx`` + ``<model>.onnx.json``) once per process."""
    import onnxruntime
    from piper import PiperConfig, PiperVoice

    with open(f"{model_path}.json", encoding="utf-8") as fh:
        config_dict = json.load(fh)
    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    return PiperVoice(
        config=PiperConfig.from_dict(config_dict),
        session=onnxruntime.InferenceSession(model_path, sess_options=options, providers=["CPUExecutionProvider"]),
    )


def init_piper(model_path: str, threads: int) -> None:
    """Worker initializer: load the voice and synthesize once."""
    synthesize_sentence(model_path, threads, "Ready.", None)


def synthesize_sentence(model_path: str, threads: int, sentence: str, speaker: str | None) -> bytes:
    """One sentence -> PCM16 at the voice's rate."""
    from piper import SynthesisConfig

    voice = load_piper(model_path, threads)
    config = SynthesisConfig(speaker_id=voice.config.speaker_id_map[speaker] if speaker else None)  # type: ignore[attr-defined]
    return b"".join(
        chunk.audio_int16_bytes
        for chunk in voice.synthesize(sentence, syn_config=config)  # type: ignore[attr-defined]
    )


# --- Silero VAD (per-stream state lives in the worker that serves the stream) ------------

_SEGMENTERS: dict[str, object] = {}


def init_vad() -> None:
    """Worker initializer: import and load Silero once."""
    from voipbin.speech.stt.vad import silero_detector

    silero_detector()


def vad_open(stream_id: str, config: dict) -> None:
    from voipbin.speech.stt.vad import VadSegmenter, silero_detector

    _SEGMENTERS[stream_id] = VadSegmenter(silero_detector(), **config)


def vad_process(stream_id: str, pcm: bytes, end_of_stream: bool, interim_after_s: float | None) -> tuple:
    """Segment `pcm` for one stream; return ``(events, state)`` (see `vad.segment_step`)."""
    from voipbin.speech.stt.vad import segment_step

    segmenter = _SEGMENTERS.get(stream_id)
    if segmenter is None:
        raise LookupError(f"VAD stream {stream_id} is not open in this worker (worker restarted?)")
    try:
        return segment_step(segmenter, pcm, end_of_stream, interim_after_s)  # type: ignore[arg-type]
    finally:
        if end_of_stream:
            _SEGMENTERS.pop(stream_id, None)


def vad_close(stream_id: str) -> None:
    _SEGMENTERS.pop(stream_id, None)
