"""What runs inside the speech worker processes (see `voipbin.speech.workers`).

Plain module-level functions, picklable by reference: an initializer loads a model into
this module's globals once per worker; the job functions take and return plain data
(PCM16 bytes, text). The VAD jobs live beside their segmenter in
`voipbin.speech.stt.vad`. Nothing here touches the event loop. The same functions
run on threads in ``thread`` mode (the models are then shared by the process).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

from voipbin.media.pcm import pcm16_to_float
from voipbin.speech import repetition
from voipbin.speech.audio import STT_SAMPLE_RATE
from voipbin.speech.workers import recyclable

# --- faster-whisper ---------------------------------------------------------------------

FULL_WINDOW = 3000
"""Whisper's window in log-mel frames (30 s at 100 frames a second)."""
MAX_TARGET_TOKENS = 448
"""Whisper's decoder context: prompt + new tokens."""


@dataclass(frozen=True)
class WhisperOptions:
    """How a model is loaded and decoded (a hashable key: one loaded model per value)."""

    model: str
    compute_type: str = "int8"
    cpu_threads: int = 0
    beam_size: int = 1
    max_new_tokens: int | None = None
    min_window_s: float = 30.0
    """Shortest audio window the encoder sees (Whisper's is 30 s; see `transcribe`)."""


@functools.lru_cache(maxsize=4)
def load_whisper(model: str, compute_type: str, cpu_threads: int) -> object:
    """Load a faster-whisper model once per process (path or locally cached name)."""
    from faster_whisper import WhisperModel

    return WhisperModel(
        model, device="cpu", compute_type=compute_type, cpu_threads=cpu_threads, local_files_only=True
    )


@recyclable
def init_whisper(options: WhisperOptions) -> None:
    """Worker initializer: load the model and run it once (the first real job is not slower)."""
    transcribe(options, b"\x00\x00" * 8000, "en")


def transcribe(options: WhisperOptions, pcm: bytes, language: str) -> str:
    """16 kHz PCM16 of one utterance -> its text; the same audio always gives the same text
    (greedy or beam search, no sampling).

    Whisper's encoder is trained on 30 s windows and faster-whisper always pads to one; its
    cost is most of a short utterance's transcription (tiny.en: ~330 ms of ~420 ms on 2
    vCPUs). CTranslate2 accepts shorter windows, so an utterance is encoded in a window of
    its own length plus 1 s, at least `min_window_s` (10 s: encode ~60 ms). In a short window
    a lone word sometimes loops ("Transfer. Transfer. ..."): the decode is bounded by
    `repetition.token_budget` (15 tokens a second of audio, + 10), and a result that looks
    looped (`repetition.looks_looped`, or ending in a repeated phrase) is decoded again in
    Whisper's full 30 s window, as faster-whisper would; should that loop too, the repeats
    are cut (`repetition.collapse_repeats`). Audio longer than one window goes through
    faster-whisper's own `transcribe`, each window bounded by `max_new_tokens`.
    """
    if not pcm:
        return ""
    model = load_whisper(options.model, options.compute_type, options.cpu_threads)
    audio = pcm16_to_float(pcm)
    features = model.feature_extractor(audio)  # type: ignore[attr-defined]
    frames = features.shape[-1]
    if frames + 100 > FULL_WINDOW:
        segments, _info = model.transcribe(  # type: ignore[attr-defined]
            audio,
            language=language,
            beam_size=options.beam_size,
            temperature=0.0,  # no sampled re-decoding: the same audio always gives the same text
            without_timestamps=True,
            condition_on_previous_text=False,
            vad_filter=False,
            max_new_tokens=options.max_new_tokens,
        )
        return " ".join(segment.text.strip() for segment in segments).strip()
    budget = repetition.token_budget(len(audio) / STT_SAMPLE_RATE, options.max_new_tokens)
    window = min(FULL_WINDOW, max(int(options.min_window_s * 100), -(-(frames + 100) // 100) * 100))
    if window < FULL_WINDOW:
        text, n_tokens = _decode_window(model, options, features, window, language, budget)
        if not (repetition.looks_looped(text, n_tokens, budget) or repetition.ends_in_repeat(text)):
            return text
    text, n_tokens = _decode_window(model, options, features, FULL_WINDOW, language, budget)
    if repetition.looks_looped(text, n_tokens, budget):
        return repetition.collapse_repeats(text)
    return text


def _decode_window(
    model: object, options: WhisperOptions, features: object, window: int, language: str, budget: int
) -> tuple[str, int]:
    """Encode `features` (log-mel, 100 frames a second) zero-padded to `window` frames, then
    decode at most `budget` tokens without timestamps, as faster-whisper would (same prompt,
    suppressed tokens, no-speech test). Returns (text, tokens decoded)."""
    import numpy as np
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import get_ctranslate2_storage, get_suppressed_tokens

    ct2 = model.model  # type: ignore[attr-defined]
    n_mels, frames = features.shape  # type: ignore[attr-defined]
    padded = np.zeros((1, n_mels, window), dtype=np.float32)
    padded[0, :, :frames] = features
    encoded = ct2.encode(get_ctranslate2_storage(padded), to_cpu=False)
    tokenizer = Tokenizer(
        model.hf_tokenizer,  # type: ignore[attr-defined]
        ct2.is_multilingual,
        task="transcribe",
        language=language if ct2.is_multilingual else None,
    )
    prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
    result = ct2.generate(
        encoded,
        [prompt],
        beam_size=options.beam_size,
        max_length=min(MAX_TARGET_TOKENS, len(prompt) + budget),
        return_scores=True,
        return_no_speech_prob=True,
        suppress_blank=True,
        suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
    )[0]
    tokens = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
    avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
    if result.no_speech_prob > 0.6 and avg_logprob < -1.0:
        return "", 0  # faster-whisper's test: silence or noise, not words
    return tokenizer.decode(tokens).strip(), len(tokens)


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
    # no arena: onnxruntime's CPU arena keeps the largest intermediate tensors of every sentence
    # synthesized (a worker grew to ~190 MiB PSS); without it they are freed, and trimmed when the
    # worker idles (~130 MiB), for no measurable synthesis time (bench/transcribe_capacity.py --idle)
    options.enable_cpu_mem_arena = False
    return PiperVoice(
        config=PiperConfig.from_dict(config_dict),
        session=onnxruntime.InferenceSession(model_path, sess_options=options, providers=["CPUExecutionProvider"]),
    )


@recyclable
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
