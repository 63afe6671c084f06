"""In headless Chromium, at phone (390x844) and PC (1366x768) widths: log in
(with the TOTP step for a district admin), see the coverage tree, drill down and
edit a village's population inline; a broker sees their village. Screenshots go
to test-artifacts/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import TOWNSHIP, VILLAGE, LiveServer, Login

pytestmark = pytest.mark.browser

VIEWPORTS = {"phone": {"width": 390, "height": 844}, "pc": {"width": 1366, "height": 768}}


@pytest.fixture(params=list(VIEWPORTS))
def screen(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def page(browser: Any, screen: str) -> Iterator[Any]:
    context = browser.new_context(
        viewport=VIEWPORTS[screen], locale="zh-CN", timezone_id="Asia/Shanghai"
    )
    context.set_default_timeout(5000)
    page = context.new_page()
    # A CSP violation or a script error would break HTMX silently: collect them.
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on(
        "console",
        lambda msg: problems.append(msg.text) if msg.type == "error" else None,
    )
    page.problems = problems
    try:
        yield page
    finally:
        context.close()


def _log_in(page: Any, server: LiveServer, login: Login) -> None:
    page.goto(f"{server.url}/login")
    page.get_by_label("用户名", exact=True).fill(login.username)
    page.get_by_label("密码", exact=True).fill(login.password)
    page.get_by_role("button", name="登录").click()
    if login.totp_secret:
        page.get_by_role("heading", name="动态验证码").wait_for()
        totp = pyotp.TOTP(login.totp_secret)
        page.get_by_label("6 位动态验证码").fill(totp.now())
        page.get_by_role("button", name="验证并登录").click()
    page.get_by_role("heading", name="您好").wait_for()


def _unexpected(page: Any) -> list[str]:
    """Script errors and failed loads, less the refusals a journey provokes on purpose
    (a form sent back with its errors is a 422, another district's page a 403)."""
    expected = ("(Unprocessable Entity)", "(Forbidden)")
    return [p for p in page.problems if not p.endswith(expected)]


def _no_horizontal_scroll(page: Any) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px"


def _shot(page: Any, artifacts: Path, name: str) -> None:
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)


def test_admin_sees_coverage_and_edits_population(
    page: Any, live_server: LiveServer, artifacts: Path, screen: str
) -> None:
    _log_in(page, live_server, live_server.logins[f"admin_{screen}"])
    page.get_by_role("heading", name="渝中区经纪人覆盖情况").wait_for()
    _shot(page, artifacts, f"home-district-admin-{screen}")

    page.get_by_role("navigation", name="功能", exact=True).get_by_role(
        "link", name="区划与覆盖", exact=True
    ).click()
    page.get_by_role("heading", name="渝中区", exact=True).wait_for()
    expect(page.locator("#coverage-summary")).to_be_visible()
    page.locator(f'a[href="/regions/{TOWNSHIP}"]').first.wait_for()
    _no_horizontal_scroll(page)
    _shot(page, artifacts, f"coverage-district-{screen}")

    page.locator(f'a[href="/regions/{TOWNSHIP}"]').first.click()
    page.get_by_role("heading", name="七星岗街道").wait_for()
    row = page.locator(f"#row-{VILLAGE}")
    row.get_by_role("button", name="修改").click()
    field = page.locator(f"#row-{VILLAGE} input[name=population]")
    field.fill("12000")
    _shot(page, artifacts, f"coverage-township-editing-{screen}")
    page.locator(f"#row-{VILLAGE}").get_by_role("button", name="保存").click()
    page.locator(f"#row-{VILLAGE} .pop-value", has_text="12,000").wait_for()
    # 12,000 residents need 3 brokers; the village has 1, so it is now short.
    page.locator(f"#row-{VILLAGE}.short").wait_for()
    _no_horizontal_scroll(page)
    _shot(page, artifacts, f"coverage-township-{screen}")

    page.locator(f"#row-{VILLAGE}").get_by_role("button", name="修改").click()
    field_after_bad = page.locator(f"#row-{VILLAGE} input[name=population]")
    field_after_bad.fill("-5")
    page.locator(f"#row-{VILLAGE}").get_by_role("button", name="保存").click()
    page.locator(f"#row-{VILLAGE} .field-error").wait_for()
    page.locator(f"#row-{VILLAGE}").get_by_role("button", name="取消").click()
    page.locator(f"#row-{VILLAGE} .pop-value", has_text="12,000").wait_for()

    # Back to unknown: one broker needed, and the village's one broker covers it.
    page.locator(f"#row-{VILLAGE}").get_by_role("button", name="修改").click()
    page.locator(f"#row-{VILLAGE} input[name=population]").fill("")
    page.locator(f"#row-{VILLAGE}").get_by_role("button", name="保存").click()
    page.locator(f"#row-{VILLAGE} .pop-value", has_text="未知").wait_for()
    # Retrying: right after the swap htmx may still hold the old row's classes.
    expect(page.locator(f"#row-{VILLAGE}")).not_to_have_class(re.compile(r"(^|\s)short(\s|$)"))

    page.goto(f"{live_server.url}/regions/500238")  # 巫溪县: another district
    page.get_by_text("不在您的管辖范围内").wait_for()
    assert _unexpected(page) == []


def test_broker_sees_village_and_inbox(
    page: Any, live_server: LiveServer, artifacts: Path, screen: str
) -> None:
    _log_in(page, live_server, live_server.logins["broker"])
    page.get_by_role("heading", name="我的村（社区）：华一坡社区居民委员会").wait_for()
    _no_horizontal_scroll(page)
    _shot(page, artifacts, f"home-broker-{screen}")
    page.get_by_role("navigation", name="功能", exact=True).get_by_role(
        "link", name="消息", exact=True
    ).click()
    page.get_by_role("heading", name="消息").wait_for()
    _shot(page, artifacts, f"inbox-broker-{screen}")
    page.get_by_role("button", name="退出").click()
    page.get_by_role("heading", name="登录", exact=True).wait_for()
    _shot(page, artifacts, f"login-{screen}")
    assert _unexpected(page) == []


def test_city_admin_creates_an_admin_who_enrols_totp(
    page: Any, live_server: LiveServer, artifacts: Path, screen: str
) -> None:
    _log_in(page, live_server, live_server.logins[f"city_{screen}"])
    page.get_by_role("navigation", name="功能", exact=True).get_by_role(
        "link", name="账号管理", exact=True
    ).click()
    page.get_by_role("heading", name="账号管理").wait_for()
    _no_horizontal_scroll(page)
    _shot(page, artifacts, f"users-{screen}")
    page.get_by_role("link", name="新建账号").click()
    username = f"wuxi_admin_{screen}"
    page.get_by_label("用户名", exact=True).fill(username)
    page.get_by_label("姓名").fill("巫溪县管理员")
    page.get_by_label("角色", exact=True).select_option("district_admin")
    page.get_by_label("区划代码").fill("500238")
    page.get_by_label("初始密码").fill("short")
    page.get_by_role("button", name="创建").click()
    page.locator("#err-password").wait_for()  # the error sits beside its field
    _no_horizontal_scroll(page)
    _shot(page, artifacts, f"users-new-error-{screen}")
    page.get_by_label("初始密码").fill(live_server.logins["broker"].password + "-x")
    page.get_by_role("button", name="创建").click()
    page.get_by_text("账号已创建").wait_for()
    _shot(page, artifacts, f"users-edit-{screen}")
    page.get_by_role("button", name="退出").click()

    page.get_by_label("用户名", exact=True).fill(username)
    page.get_by_label("密码", exact=True).fill(live_server.logins["broker"].password + "-x")
    page.get_by_role("button", name="登录").click()
    page.locator(".qr svg").wait_for()
    secret = page.locator(".secret code").inner_text().strip()
    _shot(page, artifacts, f"totp-enrol-{screen}")
    page.get_by_label("6 位动态验证码").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="验证并登录").click()
    page.get_by_role("heading", name="巫溪县经纪人覆盖情况").wait_for()
    assert _unexpected(page) == []


def test_auditor_checks_the_chain(
    page: Any, live_server: LiveServer, artifacts: Path, screen: str
) -> None:
    _log_in(page, live_server, live_server.logins[f"auditor_{screen}"])
    page.get_by_role("navigation", name="功能", exact=True).get_by_role(
        "link", name="审计日志", exact=True
    ).click()
    page.get_by_role("heading", name="审计日志").wait_for()
    page.get_by_role("button", name="校验哈希链").click()
    page.get_by_text("哈希链完整").wait_for()
    assert page.url.endswith("/audit")  # HTMX swapped the result in place
    _no_horizontal_scroll(page)
    _shot(page, artifacts, f"audit-{screen}")
    assert _unexpected(page) == []
