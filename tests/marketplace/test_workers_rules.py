"""Pure rules of the worker register: wages, names, likely duplicates, update rate."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from marketplace.errors import Invalid
from marketplace.workers import rules
from marketplace.workers.dedupe import _merged_values
from marketplace.workers.identity import check_char


def make_id(born: date, serial: int = 123, prefix: str = "500103") -> str:
    """A valid resident ID number (GB 11643) for tests; odd serials are male."""
    first17 = f"{prefix}{born:%Y%m%d}{serial:03d}"
    return first17 + check_char(first17)


T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 2, 1, tzinfo=UTC)


def entry(
    created: datetime, *touched: datetime, deleted: datetime | None = None
) -> rules.RegisterEntry:
    return rules.RegisterEntry(created_at=created, deleted_at=deleted, touched_at=touched)


def test_update_rate_with_no_records_is_none_not_zero() -> None:
    assert rules.update_rate([], start=T0, end=T1) is None


def test_update_rate_counts_records_live_at_the_end_of_the_period() -> None:
    before = T0 - timedelta(days=30)
    entries = [
        entry(before),  # live, untouched
        entry(before, T0 + timedelta(days=3)),  # verified or updated inside
        entry(before, T1),  # touched exactly at end: outside [start, end)
        entry(before, T0),  # touched exactly at start: inside
        entry(before, T0 + timedelta(days=1), deleted=T0 + timedelta(days=2)),  # gone
        entry(T1 + timedelta(days=1)),  # created after the period
    ]
    assert rules.update_rate(entries, start=T0, end=T1) == pytest.approx(2 / 4)


def test_update_rate_only_deleted_records_is_none_and_all_touched_is_one() -> None:
    gone = entry(T0 - timedelta(days=1), deleted=T0)
    assert rules.update_rate([gone], start=T0, end=T1) is None
    created_inside = entry(T0 + timedelta(days=1), T0 + timedelta(days=1))
    assert rules.update_rate([created_inside], start=T0, end=T1) == 1.0


def test_update_rate_refuses_an_empty_period() -> None:
    with pytest.raises(ValueError, match="start"):
        rules.update_rate([], start=T1, end=T0)


@pytest.mark.parametrize(
    ("low", "high", "unit", "field"),
    [
        (30000, 20000, "day", "wage_min_fen"),  # min above max
        (-1, 20000, "day", "wage_min_fen"),  # negative
        (20000, 90_000_000, "day", "wage_max_fen"),  # 900,000 yuan a day
        (5, None, "month", "wage_min_fen"),  # 5 fen a month
        (20000, None, None, "wage_unit"),  # no unit
    ],
)
def test_bad_wages_name_the_field(low: int, high: int | None, unit: str | None, field: str) -> None:
    with pytest.raises(Invalid) as caught:
        rules.check_wage(low, high, unit)
    assert caught.value.field == field


def test_sane_wages_pass() -> None:
    rules.check_wage(20000, 30000, "day")
    rules.check_wage(None, None, None)
    rules.check_wage(500_000, 800_000, "month")


def test_names_and_lists_are_cleaned() -> None:
    assert rules.clean_name("  张  三 ") == "张 三"
    with pytest.raises(Invalid):
        rules.clean_name("  ")
    assert rules.clean_list([" 电焊 ", "", "电焊", "砌墙"], field="skills") == ["电焊", "砌墙"]
    assert rules.mask_name("张三丰") == "张**"
    assert rules.mask_name("李") == "李*"


def test_duplicate_reasons() -> None:
    born = date(1980, 5, 6)
    a = rules.DuplicateCandidate(1, "王建国", "h1", "500103001001", born)
    similar = rules.DuplicateCandidate(2, "王 建国", "h1", "500103001002", date(1981, 1, 1))
    # One slip in a three-character name (67) is flagged; a different
    # two-character name on the same phone (a relative, 50) is not.
    slip = rules.DuplicateCandidate(3, "王建囯", "h1", "500103001002", date(1981, 1, 1))
    relative = rules.DuplicateCandidate(5, "王芳", "h1", "500103001002", date(1981, 1, 1))
    relative_b = rules.DuplicateCandidate(6, "王丽", "h1", "500103001002", date(1983, 1, 1))
    same_birth = rules.DuplicateCandidate(4, "赵六", None, "500103001001", born)
    assert rules.duplicate_reasons(a, similar) == ["same_phone_similar_name"]
    assert rules.duplicate_reasons(a, slip) == ["same_phone_similar_name"]
    assert rules.duplicate_reasons(relative, relative_b) == []
    assert rules.duplicate_reasons(a, same_birth) == ["same_village_birth_date"]


def test_merge_keeps_survivor_values_and_fills_gaps() -> None:
    keep = {
        "name": "王建国", "id_number": "A", "phone": None, "hukou_village_code": "v1",
        "skills": ["电焊"], "occupation_codes": [], "training_wishes": [],
        "certificates": [{"type": "焊工证", "number": "1", "expires_on": None}],
        "note": "原记录", "current_region_code": None, "current_location_text": None,
        "wage_min_fen": None, "wage_max_fen": None, "wage_unit": None,
    }  # fmt: skip
    other = {
        **keep, "id_number": "B", "phone": "13800000000", "hukou_village_code": "v2",
        "skills": ["砌墙", "电焊"], "note": "另一条",
        "certificates": [{"type": "焊工证", "number": "1", "expires_on": None},
                         {"type": "电工证", "number": "2", "expires_on": None}],
    }  # fmt: skip
    merged = _merged_values(keep, other)
    assert merged["id_number"] == "A"
    assert merged["hukou_village_code"] == "v1"
    assert merged["phone"] == "13800000000"
    assert merged["skills"] == ["电焊", "砌墙"]
    assert merged["note"] == "原记录"
    assert [c["number"] for c in merged["certificates"]] == ["1", "2"]


def test_a_record_unverified_for_a_year_is_stale() -> None:
    now = datetime(2026, 11, 27, tzinfo=UTC)
    assert rules.is_stale(None, now)
    assert not rules.is_stale(now - timedelta(days=365), now)
    assert rules.is_stale(now - timedelta(days=366), now)
