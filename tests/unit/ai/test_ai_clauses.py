"""The turn loop's text handling: streamed replies cut into units, and what a barge-in leaves in the history."""

from __future__ import annotations

from voipbin.ai.talk import ClauseSplitter, _Unit, played_text


def _split(pieces: list[str]) -> list[str]:
    splitter = ClauseSplitter()
    units = [u for piece in pieces for u in splitter.push(piece)]
    rest = splitter.flush()
    return units + ([rest] if rest else [])


def test_first_unit_ends_at_the_first_clause_later_ones_at_sentence_ends() -> None:
    tokens = ["Sure", ",", " I", " can", " help", ",", " with", " that", ". Your", " order", " ships", " today",
              "! Anything", " else", "?"]
    assert _split(tokens) == ["Sure, I can help,", "with that.", "Your order ships today!", "Anything else?"]


def test_a_one_word_clause_is_not_cut_and_text_without_breaks_comes_at_the_end() -> None:
    assert _split(["Yes, ", "it is open."]) == ["Yes, it is open."]
    assert _split(["no", " punctuation", " at all"]) == ["no punctuation at all"]
    assert _split(["Dr. Smith", " is in. Bye."]) == ["Dr.", "Smith is in.", "Bye."]  # abbreviations are cut too


def test_played_text_keeps_whole_units_and_the_played_share_of_the_cut_one() -> None:
    units = [_Unit("Hello there,", 0, 50), _Unit("your table is ready at eight tonight.", 50, 150),
             _Unit("Enjoy.", 150, 180)]
    assert played_text(units, 0) == ""
    assert played_text(units, 50) == "Hello there,"
    assert played_text(units, 100) == "Hello there, your table is"  # half of the second unit's 7 words
    assert played_text(units, 180) == "Hello there, your table is ready at eight tonight. Enjoy."
    assert played_text([_Unit("still synthesizing", 0, None)], 10) == ""  # share unknown yet: nothing claimed
