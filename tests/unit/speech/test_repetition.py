"""The loop guards of Whisper decoding (voipbin.speech.repetition): pure functions, no model."""

from voipbin.speech.repetition import (
    COMPRESSION_RATIO_MAX,
    MIN_TOKENS,
    TOKENS_PER_S,
    collapse_repeats,
    compression_ratio,
    ends_in_repeat,
    looks_looped,
    token_budget,
)

LOOP = "Transfer. " * 20


def test_token_budget_grows_with_the_audio_and_stops_at_the_ceiling() -> None:
    assert token_budget(0.0) == MIN_TOKENS
    assert token_budget(1.0) == MIN_TOKENS + TOKENS_PER_S
    assert token_budget(0.61) == MIN_TOKENS + 10  # ceil(9.15)
    assert token_budget(28.0, ceiling=224) == 224
    assert token_budget(-1.0) == MIN_TOKENS


def test_a_twenty_times_repeated_word_compresses_like_a_loop_and_a_sentence_does_not() -> None:
    assert compression_ratio(LOOP) > COMPRESSION_RATIO_MAX
    assert compression_ratio("Your order has been shipped and will arrive on Monday.") < COMPRESSION_RATIO_MAX
    assert compression_ratio("") == 0.0


def test_a_decode_that_used_its_whole_budget_or_compresses_is_looped() -> None:
    assert looks_looped("Transfer. Transfer. Transfer.", n_tokens=20, budget=20)
    assert looks_looped(LOOP, n_tokens=40, budget=100)
    assert not looks_looped("Transfer.", n_tokens=2, budget=20)


def test_a_phrase_said_twice_at_the_end_is_a_repeat_case_and_punctuation_aside() -> None:
    assert ends_in_repeat("Demon test. Demon test.")
    assert ends_in_repeat("Location Location location")
    assert ends_in_repeat("Please hold. One two, one two")
    assert not ends_in_repeat("Thank you for calling the support line.")
    assert not ends_in_repeat("Transfer.")
    assert not ends_in_repeat("")


def test_text_written_without_spaces_is_compared_character_by_character() -> None:
    assert ends_in_repeat("テストテスト")
    assert ends_in_repeat("转接。转接。")
    assert not ends_in_repeat("ありがとうございます")
    assert not ends_in_repeat("ここ")  # a doubled character is a word ("here"), not a loop
    assert not ends_in_repeat("Three.") and not ends_in_repeat("11") and not ends_in_repeat("Papa")
    assert collapse_repeats("转接转接转接转") == "转接"


def test_collapse_keeps_the_first_copy_as_written() -> None:
    assert collapse_repeats("Demon test. Demon test.") == "Demon test."
    assert collapse_repeats("Added. Added. Added. Add") == "Added."  # the budget cut the last copy
    assert collapse_repeats("message message message") == "message"
    assert collapse_repeats("Please press 1-4. Press 1-4. Press 1-4.") == "Please press 1-4."
    assert collapse_repeats("Hello there. ") == "Hello there."
