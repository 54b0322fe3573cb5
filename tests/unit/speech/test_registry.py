import pytest
from pydantic import SecretStr

from voipbin.speech import SpeechConfigError, SpeechSettings
from voipbin.speech.stt.registry import SttRegistry
from voipbin.speech.tts.registry import TtsRegistry

NO_KEYS = {"elevenlabs_api_key": None, "gcp_api_key": None, "aws_access_key_id": None}


def test_default_provider_is_piper_without_an_elevenlabs_key() -> None:
    assert TtsRegistry(SpeechSettings(**NO_KEYS)).default_provider == "piper"


def test_default_provider_is_elevenlabs_with_its_key() -> None:
    settings = SpeechSettings(**(NO_KEYS | {"elevenlabs_api_key": SecretStr("k")}))
    assert TtsRegistry(settings).default_provider == "elevenlabs"


def test_default_provider_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOIPBIN_TTS_DEFAULT_PROVIDER", "espeak")
    monkeypatch.setenv("VOIPBIN_ELEVENLABS_API_KEY", "k")
    registry = TtsRegistry(SpeechSettings())
    assert registry.default_provider == "espeak"
    assert registry.get().name == "espeak"


@pytest.mark.parametrize("provider", ["elevenlabs", "gcp", "aws"])
def test_cloud_tts_without_key_is_an_error_not_a_fallback(provider: str) -> None:
    registry = TtsRegistry(SpeechSettings(**NO_KEYS))
    with pytest.raises(SpeechConfigError, match=f"provider: {provider} is not configured"):
        registry.get(provider)


@pytest.mark.parametrize("provider", ["gcp", "aws"])
def test_cloud_stt_without_key_is_an_error(provider: str) -> None:
    with pytest.raises(SpeechConfigError, match="not configured"):
        SttRegistry(SpeechSettings(**NO_KEYS)).get(provider)


def test_unknown_providers() -> None:
    with pytest.raises(SpeechConfigError, match="unknown TTS provider"):
        TtsRegistry(SpeechSettings(**NO_KEYS)).get("festival")
    with pytest.raises(SpeechConfigError, match="unknown STT provider"):
        SttRegistry(SpeechSettings(**NO_KEYS)).get("sphinx")


def test_synthesizers_are_built_once() -> None:
    registry = TtsRegistry(SpeechSettings(**(NO_KEYS | {"gcp_api_key": SecretStr("k")})))
    assert registry.get("gcp") is registry.get("gcp")


def test_check_validates_language_before_any_audio() -> None:
    registry = TtsRegistry(SpeechSettings(**(NO_KEYS | {"gcp_api_key": SecretStr("k")})))
    assert registry.check("gcp", language="en-us") == "en-US"
    with pytest.raises(ValueError, match="BCP 47"):
        registry.check("gcp", language="en_US")
