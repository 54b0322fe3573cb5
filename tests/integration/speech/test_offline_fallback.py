"""Offline providers (the sandbox) and "who serves this language", with the real local engines.

``VOIPBIN_SPEECH_OFFLINE_FALLBACK`` on: a cloud provider without its key is spoken by piper (espeak
for the languages piper's voice lacks) and heard by whisper, under the provider's own name; off
(``voipbin serve``): the same request stays a 400-class `SpeechConfigError` naming ``provider``.
`provider_for` picks the engine that serves a language, or says that none does.
"""

from __future__ import annotations

import pytest
import structlog
from pydantic import SecretStr

from voipbin.speech import SpeechConfigError, SpeechSettings, UnsupportedLanguageError
from voipbin.speech.stt.registry import OfflineRecognizer, SttRegistry
from voipbin.speech.tts.registry import OfflineStandIn, TtsRegistry

pytestmark = pytest.mark.slow

NO_KEYS = {"elevenlabs_api_key": None, "gcp_api_key": None, "aws_access_key_id": None,
           "tts_default_provider": None, "stt_default_provider": "whisper"}
LOCAL = {"piper_worker_mode": "thread", "whisper_worker_mode": "thread", "vad_worker_mode": "thread"}
ELEVENLABS_VOICE = "21m00Tcm4TlvDq8ikWAM"  # seed 002's voice_id


def _settings(**extra: object) -> SpeechSettings:
    return SpeechSettings(**(NO_KEYS | LOCAL | extra))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def offline() -> TtsRegistry:
    return TtsRegistry(_settings(speech_offline_fallback=True))


@pytest.mark.parametrize("provider", ["elevenlabs", "gcp", "aws"])
def test_serve_without_a_key_is_still_a_provider_error(provider: str) -> None:
    registry = TtsRegistry(_settings())
    with pytest.raises(SpeechConfigError, match=f"^provider: {provider} is not configured"):
        registry.provider_for("en-US", provider, ELEVENLABS_VOICE)
    with pytest.raises(SpeechConfigError, match=f"^provider: {provider} is not configured"):
        SttRegistry(_settings()).get(provider) if provider != "elevenlabs" else registry.get(provider)


@pytest.mark.parametrize("provider", ["elevenlabs", "gcp", "aws"])
async def test_a_cloud_provider_without_key_speaks_with_piper_under_its_own_name(
        offline: TtsRegistry, provider: str) -> None:
    synthesizer, tag = offline.provider_for("en-us", provider, ELEVENLABS_VOICE)  # any voice_id
    assert isinstance(synthesizer, OfflineStandIn)
    assert (synthesizer.name, tag) == (provider, "en-US")
    assert synthesizer.sample_rate == offline.get("piper").sample_rate
    assert synthesizer.local_engine("en-US").name == "piper"
    pcm = b"".join([c async for c in synthesizer.synthesize("Hello there.", language="en-US",
                                                             voice=ELEVENLABS_VOICE)])
    assert len(pcm) > synthesizer.sample_rate  # more than half a second of 16-bit audio


async def test_the_stand_in_speaks_other_languages_with_espeak(offline: TtsRegistry) -> None:
    synthesizer = offline.get("elevenlabs")
    assert synthesizer.check(language="ko-KR", voice=ELEVENLABS_VOICE) == "ko-KR"
    assert synthesizer.local_engine("ko-KR").name == "espeak"
    pcm = b"".join([c async for c in synthesizer.synthesize("안녕하세요", language="ko-KR")])
    assert len(pcm) > synthesizer.sample_rate // 2
    with pytest.raises(UnsupportedLanguageError, match="^language: espeak cannot speak zu-ZA"):
        synthesizer.check(language="zu-ZA")


def test_one_log_line_per_provider_that_falls_back() -> None:
    registry = TtsRegistry(_settings(speech_offline_fallback=True))
    with structlog.testing.capture_logs() as logs:
        for _ in range(3):
            registry.get("elevenlabs")
            registry.get("gcp")
    fallbacks = [e for e in logs if "no credentials" in e["event"]]
    assert [e["provider"] for e in fallbacks] == ["elevenlabs", "gcp"]


def test_a_keyed_provider_is_never_replaced() -> None:
    registry = TtsRegistry(_settings(speech_offline_fallback=True, gcp_api_key=SecretStr("k")))
    assert type(registry.get("gcp")).__name__ == "GcpSynthesizer"
    assert registry.stands_in("elevenlabs") and not registry.stands_in("gcp")


def test_who_speaks_a_language(offline: TtsRegistry) -> None:
    assert offline.provider_for("en-US")[0].name == "piper"
    assert offline.provider_for("ko-KR")[0].name == "espeak"  # the default (piper) cannot
    with pytest.raises(UnsupportedLanguageError, match="^language: piper voice .* not ko-KR"):
        offline.provider_for("ko-KR", "piper")
    with pytest.raises(UnsupportedLanguageError,
                       match="^language: no configured text-to-speech engine speaks zu-ZA"):
        offline.provider_for("zu-ZA")
    with pytest.raises(SpeechConfigError, match="^language: 'en_US' is not a valid BCP 47"):
        offline.provider_for("en_US")


def test_who_hears_a_language() -> None:
    registry = SttRegistry(_settings(speech_offline_fallback=True))
    recognizer, tag = registry.provider_for("en-us")
    assert (recognizer.name, tag) == ("whisper", "en-US")
    with pytest.raises(UnsupportedLanguageError,
                       match="^language: no configured speech-to-text engine hears zu-ZA"):
        registry.provider_for("zu-ZA")  # no bundled Whisper model knows Zulu
    stand_in, _ = registry.provider_for("en-US", "gcp")
    assert isinstance(stand_in, OfflineRecognizer) and stand_in.name == "gcp"
    with pytest.raises(UnsupportedLanguageError):
        registry.provider_for("zu-ZA", "aws")
