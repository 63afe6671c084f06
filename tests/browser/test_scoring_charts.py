"""The points charts render in Chromium: the city computes a month on the rankings
page (distribution with its lines), the broker sees their score and 12-month trend
on a phone, and the public page shows every district's coverage bars."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from marketplace.clock import SHANGHAI
from tests.browser.conftest import LiveServer
from tests.browser.test_coverage_journey import _log_in, _no_horizontal_scroll, _shot, _unexpected

pytestmark = pytest.mark.browser


def _context(browser: Any, width: int, height: int) -> Any:
    context = browser.new_context(
        viewport={"width": width, "height": height}, locale="zh-CN", timezone_id="Asia/Shanghai"
    )
    context.set_default_timeout(5000)
    return context


def _watch(page: Any) -> Any:
    page.problems = []
    page.on("pageerror", lambda exc: page.problems.append(str(exc)))
    page.on("console", lambda msg: page.problems.append(msg.text) if msg.type == "error" else None)
    return page


def _box_width(locator: Any) -> float:
    box = locator.bounding_box()
    assert box is not None
    return float(box["width"])


def test_score_charts_render(browser: Any, live_server: LiveServer, artifacts: Path) -> None:
    period = datetime.now(SHANGHAI).strftime("%Y-%m")
    pc = _context(browser, 1366, 900)
    try:
        page = _watch(pc.new_page())
        _log_in(page, live_server, live_server.logins["city_scores"])
        page.goto(f"{live_server.url}/scores")
        page.get_by_label("考核期间").fill(period)
        page.get_by_role("button", name="计算积分").click()
        page.get_by_role("heading", name=f"{period} 排名").wait_for()
        chart = page.locator("svg.chart").first
        expect(chart).to_be_visible()
        assert _box_width(chart) > 300
        assert page.locator("svg.chart rect.bar").count() == 10
        _shot(page, artifacts, "scores-rankings-pc")

        page.goto(f"{live_server.url}/public/rankings?period={period}")
        bars = page.locator("svg.chart rect.bar")
        expect(bars.first).to_be_attached()
        assert bars.count() >= 38  # every district of Chongqing with villages
        assert page.locator("svg.chart circle.dot").count() >= 1  # a district with scores
        _shot(page, artifacts, "scores-public-pc")
        assert _unexpected(page) == []
    finally:
        pc.close()

    phone = _context(browser, 390, 844)
    try:
        page = _watch(phone.new_page())
        _log_in(page, live_server, live_server.logins["broker"])
        page.get_by_role("navigation", name="功能", exact=True).get_by_role(
            "link", name="我的积分", exact=True
        ).click()
        page.get_by_role("heading", name=f"{period} 积分").wait_for()
        trend = page.locator("svg.chart")
        expect(trend).to_be_visible()
        assert page.locator("svg.chart circle.dot").count() == 1
        expect(page.get_by_role("heading", name="每一分从哪里来")).to_be_visible()
        _no_horizontal_scroll(page)
        _shot(page, artifacts, "scores-me-phone")
        assert _unexpected(page) == []
    finally:
        phone.close()
