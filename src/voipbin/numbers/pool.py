"""The numbers an operator offers to customers (``VOIPBIN_NUMBER_POOL``, issue 13 finding 9).

A pool is a comma-separated list of E.164 numbers and inclusive ranges of equal length,
e.g. ``+15550100000-+15550100099,+442071234567``. ``GET /v1.0/available_numbers`` lists the pool's
numbers that nobody owns; ``POST /v1.0/numbers`` accepts only those. A number outside the pool and
an owned one get the same 400, so claiming reveals nothing about other customers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import re

import phonenumbers

#: ``+`` then 2-15 digits, no leading zero (ITU-T E.164).
E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")

#: The sandbox's generated pool: 10,000 fictional North American numbers (+1 555-01xx-xxxx).
SANDBOX_NUMBER_POOL = "+15550100000-+15550109999"


@dataclass(frozen=True, slots=True)
class NumberRange:
    """``first``..``last`` inclusive, as integers of the digits after ``+`` (same digit count)."""

    first: int
    last: int

    def __contains__(self, value: int) -> bool:
        return self.first <= value <= self.last


class NumberPool:
    """An ordered set of E.164 numbers given as ranges; membership is O(ranges)."""

    def __init__(self, ranges: list[NumberRange]) -> None:
        self._ranges = ranges

    @classmethod
    def parse(cls, spec: str) -> NumberPool:
        """Parse ``+E164`` and ``+E164-+E164`` items separated by commas (whitespace ignored); an empty
        spec is an empty pool. Raises ValueError naming the bad item."""
        ranges: list[NumberRange] = []
        for item in (part.strip() for part in spec.split(",")):
            if not item:
                continue
            first, _, last = (s.strip() for s in item.partition("-"))
            last = last or first
            if not (E164.match(first) and E164.match(last)) or len(first) != len(last) or first > last:
                raise ValueError(f"VOIPBIN_NUMBER_POOL item {item!r} is not an E.164 number or an ascending "
                                 "range of two E.164 numbers of the same length")
            ranges.append(NumberRange(int(first[1:]), int(last[1:])))
        return cls(ranges)

    def __contains__(self, number: object) -> bool:
        if not isinstance(number, str) or not E164.match(number):
            return False
        value = int(number[1:])
        return any(value in r and len(str(r.first)) == len(number) - 1 for r in self._ranges)

    def __iter__(self) -> Iterator[str]:
        for r in self._ranges:
            for value in range(r.first, r.last + 1):
                yield f"+{value}"


@lru_cache(maxsize=4096)
def country_of(number: str) -> str:
    """ISO 3166 alpha-2 country of an E.164 number ("US" for +1 numbers of no valid area, as the
    main country of the calling code), "" when unknown."""
    try:
        parsed = phonenumbers.parse(number)
    except phonenumbers.NumberParseException:
        return ""
    return (phonenumbers.region_code_for_number(parsed)
            or phonenumbers.region_code_for_country_code(parsed.country_code) or "").replace("ZZ", "")
