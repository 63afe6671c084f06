"""Template filters: times on screen are Asia/Shanghai, in the same text whichever way
they are formatted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from marketplace.clock import SHANGHAI, local
from web.pages.templating import local_time

FORMATS = ("%Y-%m-%d", "%Y-%m-%d %H:%M", "%m-%d %H:%M", "%H:%M:%S", "%Y-%m-%d %H:%M:%S")


@pytest.mark.parametrize("fmt", FORMATS)
def test_local_time_is_strftime_in_shanghai(fmt: str) -> None:
    start = datetime(2024, 12, 31, 16, 0, 30, tzinfo=UTC)  # 2025-01-01 00:00:30 there
    for minutes in range(0, 60 * 24 * 3, 37):
        at = start + timedelta(minutes=minutes)
        assert local_time(at, fmt) == at.astimezone(SHANGHAI).strftime(fmt)
        # SQLite hands back naive UTC.
        assert local_time(at.replace(tzinfo=None), fmt) == at.astimezone(SHANGHAI).strftime(fmt)
    assert local_time(start, "%Y-%m-%d %H:%M") == "2025-01-01 00:00"
    assert local_time(None, fmt) == ""


def test_local_converts_naive_utc_and_any_zone() -> None:
    noon_utc = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    assert local(noon_utc).hour == 20
    assert local(noon_utc.replace(tzinfo=None)) == local(noon_utc)
    assert local(noon_utc.astimezone(SHANGHAI)) == local(noon_utc)
    assert local(noon_utc).tzinfo is SHANGHAI
