"""BCP 47 language tags: validation and normalization.

`normalize_language("en-us")` -> ``"en-US"``; anything that is not a well-formed, valid
BCP 47 tag (``en_US``, ``xx-YY``, ``english``, ``""``) raises `InvalidLanguageError`
(a `SpeechConfigError`, so a ValueError), which the API maps to 400.
"""

import re

import langcodes

from voipbin.speech.errors import InvalidLanguageError

# RFC 5646 section 2.1 alphabet: letters, digits and hyphens, subtags of 1-8 characters.
_SYNTAX = re.compile(r"^[A-Za-z0-9]{1,8}(-[A-Za-z0-9]{1,8})*$")


def normalize_language(tag: str) -> str:
    """Validate a BCP 47 tag and return its canonical casing (``en-us`` -> ``en-US``).

    Raises:
        InvalidLanguageError: not a valid BCP 47 tag.
    """
    if not isinstance(tag, str) or not _SYNTAX.match(tag) or not langcodes.tag_is_valid(tag):
        raise InvalidLanguageError(f"language: {tag!r} is not a valid BCP 47 language tag")
    return langcodes.standardize_tag(tag, macro=False)


def primary_language(tag: str) -> str:
    """The primary language subtag of a valid tag (``en-US`` -> ``en``)."""
    return normalize_language(tag).split("-")[0].lower()


def region(tag: str) -> str | None:
    """The region subtag of a valid tag, if any (``en-US`` -> ``US``)."""
    territory = langcodes.Language.get(normalize_language(tag)).territory
    return territory
