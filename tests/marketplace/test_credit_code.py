"""Unified social credit codes: property tests over generated valid codes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketplace.errors import Invalid
from marketplace.organizations.credit_code import ALPHABET, check_char, parse_credit_code


@st.composite
def credit_codes(draw: st.DrawFn) -> str:
    head = draw(st.text(ALPHABET, min_size=2, max_size=2))
    division = draw(st.text("0123456789", min_size=6, max_size=6))
    body = draw(st.text(ALPHABET, min_size=9, max_size=9))
    first17 = head + division + body
    return first17 + check_char(first17)


def test_published_codes_check() -> None:
    # Real-world codes: genuine codes carry a valid check character.
    for code in ("91500000202805720T", "91110000802100433B", "91440300708461136T"):
        assert parse_credit_code(code) == code


def test_lower_case_and_spaces_are_accepted() -> None:
    assert parse_credit_code(" 91500000202805720t ") == "91500000202805720T"


@given(credit_codes())
def test_valid_codes_parse(code: str) -> None:
    assert parse_credit_code(code) == code


@given(credit_codes(), st.integers(0, 16), st.sampled_from(ALPHABET))
def test_any_single_substitution_is_caught(code: str, position: int, char: str) -> None:
    if code[position] == char or (2 <= position < 8 and not char.isdigit()):
        return
    wrong = code[:position] + char + code[position + 1 :]
    with pytest.raises(Invalid) as error:
        parse_credit_code(wrong)
    assert error.value.field == "credit_code"


@given(credit_codes(), st.integers(0, 15))
def test_adjacent_transpositions_are_caught(code: str, position: int) -> None:
    a, b = code[position], code[position + 1]
    if a == b:
        return
    swapped = code[:position] + b + a + code[position + 2 :]
    with pytest.raises(Invalid):
        parse_credit_code(swapped)


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("9150000020280572", "18 位"),
        ("91500000202805720T1", "18 位"),
        ("9150000020280572OT", "不允许的字符 O"),
        ("915000002028057I0T", "I"),
        ("91A00000202805720T", "第 3 至 8 位"),
        ("91500000202805720X", "校验位"),
    ],
)
def test_bad_codes_say_what_is_wrong(raw: str, words: str) -> None:
    with pytest.raises(Invalid) as error:
        parse_credit_code(raw)
    assert words in error.value.message
