"""The turn loop's text handling: streamed replies cut into units, and what a barge-in leaves in the history."""

from __future__ import annotations

from voipbin.ai.talk import ClauseSplitter, _Unit, continues_sentence, played_text


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


def test_a_first_unit_without_punctuation_ends_before_a_phrase_opener() -> None:
    words = "Our office opens at nine in the morning. Do come by."
    tokens = [words.split(" ")[0]] + [" " + w for w in words.split(" ")[1:]]
    assert _split(tokens) == ["Our office opens", "at nine in the morning.", "Do come by."]
    assert _split(["Sure. We open at nine in the morning."]) == ["Sure.", "We open at nine in the morning."]


def test_the_first_unit_is_not_cut_where_it_would_sound_wrong() -> None:
    assert _split(["Your cleaning is on Monday."]) == ["Your cleaning is on Monday."]  # "is" binds to what follows
    assert _split(["It is at nine."]) == ["It is at nine."]  # fewer than three words before the opener
    splitter = ClauseSplitter()
    assert splitter.push("We close early in") == []  # "in" may be the start of "inside"
    assert splitter.push("side the building. ") == ["We close early inside the building."]


def test_a_unit_after_a_cut_before_a_phrase_opener_continues_its_sentence() -> None:
    assert continues_sentence("Our office opens")
    assert not continues_sentence("Sure, I can help,") and not continues_sentence("Sure.")
    assert not continues_sentence('He said "yes."') and not continues_sentence("")


def test_played_text_keeps_whole_units_and_the_played_share_of_the_cut_one() -> None:
    units = [_Unit("Hello there,", 0, 50), _Unit("your table is ready at eight tonight.", 50, 150),
             _Unit("Enjoy.", 150, 180)]
    assert played_text(units, 0) == ""
    assert played_text(units, 50) == "Hello there,"
    assert played_text(units, 100) == "Hello there, your table is"  # half of the second unit's 7 words
    assert played_text(units, 180) == "Hello there, your table is ready at eight tonight. Enjoy."
    assert played_text([_Unit("still synthesizing", 0, None)], 10) == ""  # share unknown yet: nothing claimed
