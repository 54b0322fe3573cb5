"""Who serves a language, offline: tiny.en keeps English, the multilingual Whisper base hears the
other languages Whisper knows (built on the first request in one of them), Kokoro speaks Japanese,
espeak-ng the rest; a language none serves fails before anything loads. No model is loaded here
(no event loop: no worker starts); the round trips are in tests/integration/speech."""

from pathlib import Path

import pytest

from voipbin.speech import SpeechConfigError, SpeechSettings, UnsupportedLanguageError
from voipbin.speech.stt.multilingual import bundled_languages, bundled_multilingual_model
from voipbin.speech.stt.registry import OfflineRecognizer, SttRegistry
from voipbin.speech.tts.kokoro import split_japanese, voices
from voipbin.speech.tts.registry import TtsRegistry

NO_KEYS = {"elevenlabs_api_key": None, "gcp_api_key": None, "aws_access_key_id": None,
           "tts_default_provider": None, "stt_default_provider": "whisper", "whisper_model": None}
OFFERED = ["es-ES", "fr-FR", "de-DE", "ja-JP", "ko-KR"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("speech-cache")


def _settings(cache: Path, **extra: object) -> SpeechSettings:
    return SpeechSettings(**(NO_KEYS | {"speech_cache_dir": cache} | extra))  # type: ignore[arg-type]


def test_english_keeps_the_tiny_en_fast_path_and_builds_nothing_else(tmp_path: Path) -> None:
    stt = SttRegistry(_settings(tmp_path))
    recognizer, tag = stt.provider_for("en-us")
    assert (recognizer, tag) == (stt.get("whisper"), "en-US")
    assert recognizer.languages == {"en"}  # type: ignore[attr-defined]
    assert list(tmp_path.iterdir()) == []  # the multilingual model was not even joined


@pytest.mark.parametrize("language", OFFERED)
def test_other_languages_get_the_multilingual_model(cache: Path, language: str) -> None:
    stt = SttRegistry(_settings(cache))
    recognizer, tag = stt.provider_for(language)
    assert tag == language
    assert recognizer is not stt.get("whisper") and recognizer.name == "whisper"
    assert {"es", "fr", "de", "ja", "ko", "en"} <= recognizer.languages  # type: ignore[attr-defined]
    assert stt.provider_for("ja-JP")[0] is recognizer  # one multilingual recognizer per registry
    assert stt.provider_for("ja-JP", "whisper")[0] is recognizer  # named provider: same routing
    assert (cache / "whisper-base-1.0.0" / "model.bin").stat().st_size == 145_217_607


def test_a_stand_in_cloud_provider_hears_other_languages_with_the_multilingual_model(cache: Path) -> None:
    stt = SttRegistry(_settings(cache, speech_offline_fallback=True))
    recognizer, tag = stt.provider_for("ko-KR", "gcp")
    assert isinstance(recognizer, OfflineRecognizer) and (recognizer.name, tag) == ("gcp", "ko-KR")
    assert stt.local_for("ko-KR") is not stt.get("whisper")


@pytest.mark.parametrize("language", ["zu-ZA", "tlh"])
def test_a_language_no_model_hears_is_refused_before_anything_loads(tmp_path: Path, language: str) -> None:
    stt = SttRegistry(_settings(tmp_path))
    with pytest.raises(UnsupportedLanguageError, match=f"^language: no configured speech-to-text engine hears {language}"):
        stt.provider_for(language)
    with pytest.raises(UnsupportedLanguageError, match=f"^language: no local whisper model transcribes {language}"):
        stt.provider_for(language, "whisper")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("language", ["xx", "en_US", ""])
def test_an_invalid_tag_names_language(tmp_path: Path, language: str) -> None:
    with pytest.raises(SpeechConfigError, match="^language: "):
        SttRegistry(_settings(tmp_path)).provider_for(language)
    with pytest.raises(SpeechConfigError, match="^language: "):
        TtsRegistry(_settings(tmp_path)).provider_for(language)


def test_multilingual_none_keeps_english_only(tmp_path: Path) -> None:
    stt = SttRegistry(_settings(tmp_path, whisper_multilingual_model="none"))
    assert stt.provider_for("en-US")[1] == "en-US"
    with pytest.raises(UnsupportedLanguageError, match="^language: "):
        stt.provider_for("ja-JP")


def test_the_bundled_model_knows_whispers_languages_without_loading() -> None:
    languages = bundled_languages()
    assert len(languages) == 99 and {"en", "es", "fr", "de", "ja", "ko"} <= languages
    assert "zu" not in languages


def test_joining_is_done_once(cache: Path) -> None:
    first = bundled_multilingual_model(cache)
    stamp = (first / "model.bin").stat().st_mtime_ns
    assert bundled_multilingual_model(cache) == first
    assert (first / "model.bin").stat().st_mtime_ns == stamp
    assert not [p for p in cache.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize(("language", "engine"), [("en-US", "piper"), ("ja-JP", "kokoro"), ("ja", "kokoro"),
                                                  ("es-ES", "espeak"), ("fr-FR", "espeak"), ("de-DE", "espeak"),
                                                  ("ko-KR", "espeak")])
def test_who_speaks_each_language(tmp_path: Path, language: str, engine: str) -> None:
    synthesizer, tag = TtsRegistry(_settings(tmp_path)).provider_for(language)
    assert synthesizer.name == engine and tag.split("-")[0] == language.split("-")[0]


def test_kokoro_speaks_japanese_only_and_knows_its_voices(tmp_path: Path) -> None:
    tts = TtsRegistry(_settings(tmp_path))
    assert set(voices()) == {"jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"}
    assert tts.provider_for("ja-JP", "kokoro", "jm_kumo")[1] == "ja-JP"
    with pytest.raises(UnsupportedLanguageError, match="^language: kokoro speaks Japanese"):
        tts.provider_for("ko-KR", "kokoro")
    with pytest.raises(SpeechConfigError, match="^voice_id: kokoro has no voice 'nope'"):
        tts.provider_for("ja-JP", "kokoro", "nope")
    with pytest.raises(UnsupportedLanguageError, match="^language: no configured text-to-speech engine speaks zu-ZA"):
        tts.provider_for("zu-ZA")
    assert list(tmp_path.iterdir()) == []  # nothing joined or loaded by a check


def test_japanese_text_is_spoken_sentence_by_sentence() -> None:
    assert split_japanese("こんにちは。ご用件は何ですか？ Thank you. OK") == [
        "こんにちは。", "ご用件は何ですか？", "Thank you.", "OK"]
    assert split_japanese("一行目\n\n二行目") == ["一行目", "二行目"]
    # a long first sentence: its first clause first (sooner audio); short ones and later ones stay whole
    assert split_japanese("こんにちは、営業部の担当者と話したいです。はい、そうです。") == [
        "こんにちは、", "営業部の担当者と話したいです。", "はい、そうです。"]
    assert split_japanese("はい、そうです。") == ["はい、そうです。"]
