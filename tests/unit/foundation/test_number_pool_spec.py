"""Parsing ``VOIPBIN_NUMBER_POOL`` and the country of pool numbers."""

from __future__ import annotations

import pytest

from voipbin.numbers.pool import SANDBOX_NUMBER_POOL, NumberPool, country_of


def test_numbers_and_ranges() -> None:
    pool = NumberPool.parse(" +15550100000-+15550100002 ,+442071234567,, ")
    assert list(pool) == ["+15550100000", "+15550100001", "+15550100002", "+442071234567"]
    assert "+15550100002" in pool and "+15550100003" not in pool and "+442071234567" in pool
    assert "+155501000020" not in pool, "a longer number is not inside a range by value"
    assert "15550100001" not in pool and None not in pool
    assert list(NumberPool.parse("")) == []


@pytest.mark.parametrize("bad", ["15550100000", "+15550100009-+15550100000", "+1555-+15550", "+1-+2-+3", "x"])
def test_bad_items_are_refused_naming_them(bad: str) -> None:
    with pytest.raises(ValueError, match="NUMBER_POOL"):
        NumberPool.parse(bad)


def test_the_sandbox_pool_holds_ten_thousand_us_numbers() -> None:
    pool = NumberPool.parse(SANDBOX_NUMBER_POOL)
    assert "+15550100000" in pool and "+15550109999" in pool and "+15550110000" not in pool
    assert country_of("+15550100000") == "US" and country_of("+442071234567") == "GB"
    assert country_of("+999") == ""
