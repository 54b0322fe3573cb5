import pytest

from voipbin.speech import SpeechConfigError
from voipbin.speech.tts.base import MAX_TEXT_CHARS, check_text, split_sentences


def test_sentences_are_split_on_terminal_punctuation() -> None:
    assert split_sentences("Hello there. How are you? Fine! Thanks") == [
        "Hello there.",
        "How are you?",
        "Fine!",
        "Thanks",
    ]


def test_abbreviation_like_numbers_are_not_split() -> None:
    assert split_sentences("It costs 3.50 dollars. Bye.") == ["It costs 3.50 dollars.", "Bye."]


def test_long_first_sentence_is_split_at_its_first_clause() -> None:
    text = "Thank you for calling, your call is important to us and an agent will answer very soon."
    assert split_sentences(text) == [
        "Thank you for calling,",
        "your call is important to us and an agent will answer very soon.",
    ]
    assert split_sentences(text, first_clause_words=0) == [text]


def test_short_first_sentence_keeps_its_commas() -> None:
    assert split_sentences("Hello, world.") == ["Hello, world."]


@pytest.mark.parametrize("text", ["", "   ", "x" * (MAX_TEXT_CHARS + 1)])
def test_bad_text_is_a_config_error(text: str) -> None:
    with pytest.raises(SpeechConfigError):
        check_text(text)
