import pytest

from voipbin.speech import InvalidLanguageError, SpeechConfigError
from voipbin.speech.languages import normalize_language, primary_language


@pytest.mark.parametrize(
    ("tag", "expected"),
    [("en-US", "en-US"), ("en-us", "en-US"), ("ko-KR", "ko-KR"), ("zh-Hant-TW", "zh-Hant-TW"), ("de", "de")],
)
def test_valid_tags_are_normalized(tag: str, expected: str) -> None:
    assert normalize_language(tag) == expected


@pytest.mark.parametrize("tag", ["en_US", "xx-YY", "english", "", "en--US", "e", "en-US-"])
def test_invalid_tags_raise_a_value_error(tag: str) -> None:
    with pytest.raises(InvalidLanguageError) as info:
        normalize_language(tag)
    assert isinstance(info.value, SpeechConfigError)
    assert isinstance(info.value, ValueError)
    assert "language" in str(info.value)


def test_primary_language() -> None:
    assert primary_language("pt-BR") == "pt"
