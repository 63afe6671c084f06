"""From a public application to a certified broker, in headless Chromium: the
applicant on a phone (390x844), the officers on a PC (1366x768) and the new broker
back on the phone. The applicant sits the exam on the phone through the exam pages
(tracking code + phone), answering from the paper's key read out of the database.
Screenshots go to test-artifacts/ (and to $LAOWU_EXTRA_SHOTS when set)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from marketplace.db import create_engine, session_factory
from tests.browser.conftest import LiveServer
from tests.browser.test_coverage_journey import _log_in
from tests.browser.test_exam_journey import _right_answers
from tests.marketplace.test_broker_applications import make_id
from tests.marketplace.training_helpers import load_bank

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
PC = {"width": 1366, "height": 768}
APPLICANT_PHONE = "13512340001"
# Optional second copy of the screenshots (a developer's review folder).
EXTRA_SHOTS = (
    Path(os.environ.get("LAOWU_EXTRA_SHOTS", "")) if os.environ.get("LAOWU_EXTRA_SHOTS") else None
)


@pytest.fixture
def contexts(browser: Any) -> Iterator[dict[str, Any]]:
    opened: dict[str, Any] = {}

    def make(name: str, viewport: dict[str, int]) -> Any:
        context = browser.new_context(
            viewport=viewport, locale="zh-CN", timezone_id="Asia/Shanghai"
        )
        context.set_default_timeout(5000)
        page = context.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
        page.problems = problems
        opened[name] = context
        return page

    yield {"make": make}
    for context in opened.values():
        context.close()


def _shot(page: Any, artifacts: Path, name: str) -> None:
    path = artifacts / f"broker-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if EXTRA_SHOTS is not None and EXTRA_SHOTS.is_dir():
        shutil.copy(path, EXTRA_SHOTS / path.name)


def _fits(page: Any) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px"


def _settled(page: Any) -> None:
    """HTMX wires up swapped-in elements when the swap settles; a change made before
    that would send nothing."""
    expect(page.locator("#region-picker")).not_to_have_class(re.compile(r"htmx-(added|settling)"))
    expect(page.locator(".htmx-request")).to_have_count(0)


def _in_thread(coro_factory: Any) -> Any:
    """Run a coroutine on its own loop in a thread: Playwright's sync API owns this one."""
    result: dict[str, Any] = {}

    def run() -> None:
        result["value"] = asyncio.run(coro_factory())

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    return result.get("value")


def _load_question_bank(server: LiveServer) -> None:
    async def load() -> None:
        engine = create_engine(server.db_url, pooled=False)
        try:
            await load_bank(session_factory(engine))
        finally:
            await engine.dispose()

    _in_thread(load)


def _sit_exam(applicant: Any, server: LiveServer, code: str) -> None:
    """The exam on the phone: open it with code + phone, answer every question right
    (the key comes from the database), hand in."""
    applicant.goto(f"{server.url}/exams")
    applicant.get_by_label("跟踪码").fill(code)
    applicant.get_by_label("手机号").fill(APPLICANT_PHONE)
    applicant.get_by_role("button", name="进入考试").click()
    expect(applicant.locator("#countdown")).to_be_visible()
    attempt_id = int(applicant.url.rstrip("/").rsplit("/", 1)[-1])
    right = _right_answers(server, attempt_id)
    forms = applicant.locator("form.exam-form")
    for index in range(forms.count()):
        form = forms.nth(index)
        question_id = int(form.get_attribute("data-question") or 0)
        for choice in right[question_id]:
            form.locator("input[name=choices]").nth(choice).check()
        expect(form.locator(".saved")).to_contain_text("已保存", timeout=12000)
    applicant.get_by_role("button", name="交卷").click()
    expect(applicant.locator(".exam-score")).to_contain_text("合格")


def _decide(
    page: Any, server: LiveServer, status: str, name: str, decision: str, comment: str = ""
) -> None:
    page.goto(f"{server.url}/broker-applications?status={status}")
    page.get_by_role("link", name=re.compile(name)).first.click()
    page.get_by_label(decision).check()
    if comment:
        page.get_by_label(re.compile("^意见")).fill(comment)
    page.get_by_role("button", name="提交").click()


def test_from_public_application_to_certified_broker(
    live_server: LiveServer, contexts: dict[str, Any], artifacts: Path
) -> None:
    server = live_server
    applicant = contexts["make"]("applicant", PHONE)

    # The public form on a phone, an ID typo first.
    applicant.goto(f"{server.url}/apply")
    expect(applicant.get_by_role("heading", name="申请成为劳务经纪人")).to_be_visible()
    applicant.get_by_label("姓名").fill("周晓兰")
    good_id = make_id(88)
    applicant.get_by_label("身份证号").fill(good_id[:-1] + ("1" if good_id[-1] == "0" else "0"))
    applicant.get_by_label("手机号").fill(APPLICANT_PHONE)
    applicant.get_by_label("区县").select_option(label="渝中区")
    expect(applicant.locator("#f-township_code option", has_text="七星岗街道")).to_have_count(1)
    _settled(applicant)
    applicant.get_by_label("乡镇（街道）").select_option(label="七星岗街道")
    expect(applicant.locator("#f-village_code option", has_text="华一坡社区")).to_have_count(1)
    _settled(applicant)
    applicant.get_by_label("村（社区）", exact=True).select_option(label="华一坡社区居民委员会")
    applicant.get_by_label("人员类别").select_option(label="农村致富带头人")
    for pledge in ("会使用电脑", "会熟练使用智能手机", "有足够时间", "不是财政供养人员"):
        applicant.get_by_label(re.compile(pledge)).check()
    _shot(applicant, artifacts, "01-apply-phone")
    _fits(applicant)
    applicant.get_by_role("button", name="提交申请").click()
    expect(applicant.locator("#err-id_number")).to_contain_text("校验位")
    _shot(applicant, artifacts, "02-apply-error-phone")
    applicant.get_by_label("身份证号").fill(good_id)
    applicant.get_by_role("button", name="提交申请").click()
    code = applicant.get_by_test_id("tracking-code").inner_text().strip()
    assert re.fullmatch(r"[A-Z0-9]{10}", code)
    _shot(applicant, artifacts, "03-apply-done-phone")

    def check_status(expected: str) -> None:
        applicant.goto(f"{server.url}/apply/status")
        applicant.get_by_label("跟踪码").fill(code.lower())
        applicant.get_by_label("手机号").fill(APPLICANT_PHONE)
        applicant.get_by_role("button", name="查询").click()
        expect(applicant.get_by_test_id("status")).to_have_text(expected)

    check_status("待村（社区）推荐")

    # The village officer recommends from the queue, as a bulk decision.
    village = contexts["make"]("village", PC)
    _log_in(village, server, server.logins["village_officer"])
    village.goto(f"{server.url}/broker-applications")
    village.get_by_label("选择 周晓兰").check()
    _shot(village, artifacts, "04-queue-village-pc")
    village.get_by_role("button", name="提交").click()
    expect(village.get_by_text("已处理")).to_be_visible()

    # The township officer sends it back for more information.
    township = contexts["make"]("township", PC)
    _log_in(township, server, server.logins["township_officer"])
    _decide(township, server, "recommended", "周晓兰", "退回补充材料", "请写明带动就业的人数")
    expect(township.get_by_test_id("status")).to_have_text("退回补充材料")

    # The applicant reads why, corrects and resubmits on the phone.
    check_status("退回补充材料")
    expect(applicant.get_by_text("请写明带动就业的人数").first).to_be_visible()
    applicant.get_by_label("身份证号").fill(good_id)
    applicant.get_by_label(re.compile("补充说明")).fill("近三年带动本村 40 余人外出务工")
    _shot(applicant, artifacts, "05-returned-phone")
    _fits(applicant)
    applicant.get_by_role("button", name="重新提交").click()
    expect(applicant.get_by_text("已重新提交")).to_be_visible()
    expect(applicant.get_by_test_id("status")).to_have_text("待乡镇（街道）审核")

    # Township review, district approval, training.
    _decide(township, server, "recommended", "周晓兰", "同意")
    district = contexts["make"]("district", PC)
    _log_in(district, server, server.logins["admin_pc"])
    _decide(district, server, "township_reviewed", "周晓兰", "同意")
    expect(district.get_by_test_id("status")).to_have_text("已审批，待安排培训")
    _decide(district, server, "district_approved", "周晓兰", "同意，安排培训")
    expect(district.get_by_test_id("status")).to_have_text("培训中，待考试")
    check_status("培训中，待考试")

    # The exam, on the phone.
    _load_question_bank(server)
    _sit_exam(applicant, server, code)
    _shot(applicant, artifacts, "06a-exam-passed-phone")
    check_status("考试合格，待认证")

    # Certification: the new broker's login is shown once.
    _decide(district, server, "exam_passed", "周晓兰", "认证为劳务经纪人")
    username = district.get_by_test_id("username").inner_text().strip()
    password = district.get_by_test_id("password").inner_text().strip()
    _shot(district, artifacts, "06-certified-pc")
    check_status("已认证为劳务经纪人")
    expect(applicant.get_by_text(username.upper())).to_be_visible()  # the broker number
    _shot(applicant, artifacts, "07-status-certified-phone")

    # The new broker logs in on the phone and finds their record.
    broker = contexts["make"]("broker", PHONE)
    broker.goto(f"{server.url}/login")
    broker.get_by_label("用户名", exact=True).fill(username)
    broker.get_by_label("密码", exact=True).fill(password)
    broker.get_by_role("button", name="登录").click()
    broker.get_by_role("heading", name="您好").wait_for()
    broker.goto(f"{server.url}/brokers")
    expect(broker.get_by_test_id("broker-status")).to_have_text("在岗")
    expect(broker.get_by_text(username.upper(), exact=True)).to_be_visible()
    _shot(broker, artifacts, "08-profile-broker-phone")
    _fits(broker)
    for page in (applicant, village, township, district, broker):
        unexpected = [p for p in page.problems if not p.endswith("(Unprocessable Entity)")]
        assert not unexpected, unexpected
