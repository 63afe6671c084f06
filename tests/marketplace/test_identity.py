"""Resident ID and phone rules: property tests over generated valid numbers."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketplace.errors import Invalid
from marketplace.workers.identity import (
    PROVINCES,
    age_on,
    check_char,
    mask,
    parse_mobile,
    parse_resident_id,
    require_working_age,
)

TODAY = date(2026, 11, 27)


@st.composite
def resident_ids(draw: st.DrawFn) -> str:
    province = draw(st.sampled_from(sorted(PROVINCES)))
    county = draw(st.text("0123456789", min_size=4, max_size=4))
    born = draw(st.dates(min_value=date(1930, 1, 1), max_value=TODAY - timedelta(days=1)))
    serial = draw(st.text("0123456789", min_size=3, max_size=3))
    first17 = f"{province}{county}{born:%Y%m%d}{serial}"
    return first17 + check_char(first17)


def test_a_known_number_parses_with_birth_date_and_gender() -> None:
    first17 = "50010319900307122"
    number = first17 + check_char(first17)
    parsed = parse_resident_id(number, today=TODAY)
    assert parsed.birth_date == date(1990, 3, 7)
    assert parsed.gender == "female"  # 17th digit 2 is even
    assert mask(parsed.number) == "500***********" + number[-4:]


def test_lower_case_x_is_accepted_as_upper_case() -> None:
    for serial in range(1000):
        first17 = f"50023819850101{serial:03d}"
        if check_char(first17) == "X":
            parsed = parse_resident_id(first17 + "x", today=TODAY)
            assert parsed.number.endswith("X")
            return
    pytest.fail("no serial gives check character X")


@given(resident_ids())
def test_valid_numbers_parse(number: str) -> None:
    assert parse_resident_id(number, today=TODAY).number == number


@settings(max_examples=60)
@given(resident_ids(), st.data())
def test_every_single_character_change_is_caught(number: str, data: st.DataObject) -> None:
    position = data.draw(st.integers(0, 17))
    alphabet = "0123456789X" if position == 17 else "0123456789"
    replacement = data.draw(st.sampled_from([c for c in alphabet if c != number[position]]))
    changed = number[:position] + replacement + number[position + 1 :]
    with pytest.raises(Invalid) as caught:
        parse_resident_id(changed, today=TODAY)
    assert caught.value.field == "id_number"


@settings(max_examples=60)
@given(resident_ids(), st.integers(0, 16))
def test_every_adjacent_swap_is_caught(number: str, position: int) -> None:
    a, b = number[position], number[position + 1]
    if a == b:
        return  # swapping equal characters changes nothing
    swapped = number[:position] + b + a + number[position + 2 :]
    with pytest.raises(Invalid):
        parse_resident_id(swapped, today=TODAY)


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("", "18 位"),
        ("5001031990030712", "18 位"),
        ("50010319900307123A", "最后一位"),
        ("990103199003071234", "地区码"),
        ("500103199002301234", "不是真实日期"),
        ("500103189912311234", "不合理"),
        ("500103203001011234", "不合理"),
    ],
)
def test_bad_numbers_say_what_is_wrong(raw: str, words: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_resident_id(raw, today=TODAY)
    assert words in caught.value.message


def test_working_age_is_sixteen() -> None:
    first17 = f"500103{TODAY.year - 16}{TODAY:%m%d}123"
    sixteen_today = parse_resident_id(first17 + check_char(first17), today=TODAY)
    require_working_age(sixteen_today, today=TODAY)
    tomorrow = TODAY + timedelta(days=1)
    first17 = f"500103{tomorrow.year - 16}{tomorrow:%m%d}123"
    fifteen = parse_resident_id(first17 + check_char(first17), today=TODAY)
    with pytest.raises(Invalid, match="16"):
        require_working_age(fifteen, today=TODAY)
    assert age_on(date(2000, 2, 29), date(2016, 2, 28)) == 15


@pytest.mark.parametrize("raw", ["13812345678", "138 1234 5678", "+8613812345678", "199-1234-5678"])
def test_mobile_numbers_are_normalised(raw: str) -> None:
    assert len(parse_mobile(raw)) == 11


@pytest.mark.parametrize("raw", ["", "12812345678", "1381234567", "023-6888888", "1381234567a"])
def test_bad_mobile_numbers_are_refused(raw: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_mobile(raw)
    assert caught.value.field == "phone"


def test_masks_show_first_three_and_last_four() -> None:
    assert mask("13812345678") == "138****5678"
    assert mask("50010319900307123X") == "500***********123X"
