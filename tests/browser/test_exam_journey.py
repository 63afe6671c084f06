"""Training and the exam in headless Chromium: the township officer records attendance
on a PC, an applicant in training sits the exam on a phone (390x844) through a
dropped connection and a reload, and the city admin edits a question into a new
version. Screenshots go to test-artifacts/ (and to $LAOWU_EXTRA_SHOTS when set)."""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select
from sqlmodel import col

from marketplace.access import SYSTEM
from marketplace.brokers import training
from marketplace.brokers.exams_models import ExamItem
from marketplace.brokers.models import Broker
from marketplace.brokers.questions_models import QuestionVersion
from marketplace.brokers.training_models import SessionCreate, TrainingMode
from marketplace.crypto import DataCipher, decode_key
from marketplace.db import create_engine, session_factory, unit_of_work
from tests.browser.conftest import TOWNSHIP, VILLAGE, LiveServer
from tests.browser.test_coverage_journey import _log_in
from tests.conftest import TEST_DATA_KEY
from tests.marketplace.training_helpers import PHONE, applicant_in_training, load_bank

pytestmark = pytest.mark.browser

PHONE_SIZE = {"width": 390, "height": 844}
PC = {"width": 1366, "height": 768}
EXTRA_SHOTS = (
    Path(os.environ.get("LAOWU_EXTRA_SHOTS", "")) if os.environ.get("LAOWU_EXTRA_SHOTS") else None
)


def _in_thread(coro_factory: Any) -> Any:
    """Run a coroutine on its own loop in a thread: Playwright's sync API owns this one."""
    result: dict[str, Any] = {}

    def run() -> None:
        result["value"] = asyncio.run(coro_factory())

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=60)
    return result.get("value")


def _shot(page: Any, artifacts: Path, name: str) -> None:
    path = artifacts / f"exam-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    top = artifacts / f"exam-{name}-top.png"  # what the screen shows first
    page.screenshot(path=str(top))
    if EXTRA_SHOTS is not None and EXTRA_SHOTS.is_dir():
        shutil.copy(path, EXTRA_SHOTS / path.name)
        shutil.copy(top, EXTRA_SHOTS / top.name)


def _fits(page: Any) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px"


@pytest.fixture
def contexts(browser: Any) -> Iterator[Any]:
    opened: list[Any] = []

    def make(viewport: dict[str, int]) -> Any:
        context = browser.new_context(
            viewport=viewport, locale="zh-CN", timezone_id="Asia/Shanghai"
        )
        context.set_default_timeout(8000)
        opened.append(context)
        return context

    yield make
    for context in opened:
        context.close()


def _prepare(server: LiveServer) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        engine = create_engine(server.db_url, pooled=False)
        sessions = session_factory(engine)
        try:
            await load_bank(sessions)
            application = await applicant_in_training(
                sessions, DataCipher(decode_key(TEST_DATA_KEY)), VILLAGE, 41, name="刘考生"
            )
            async with unit_of_work(sessions) as session:
                made = await training.create_session(
                    session=session,
                    actor=SYSTEM,
                    data=SessionCreate(
                        title="劳动合同与工资支付专题",
                        region_code=TOWNSHIP,
                        starts_on=date(training.today_local().year, 1, 8),
                        days=3,
                        mode=TrainingMode.offline,
                    ),
                )
                broker = (
                    await session.execute(
                        select(Broker).where(col(Broker.village_code) == VILLAGE).limit(1)
                    )
                ).scalar_one()
            return {
                "tracking_code": application.tracking_code,
                "application_id": application.id,
                "training_id": made.id,
                "broker_id": broker.id,
            }
        finally:
            await engine.dispose()

    found: dict[str, Any] = _in_thread(run)
    return found


def _right_answers(server: LiveServer, attempt_id: int) -> dict[int, list[int]]:
    async def run() -> dict[int, list[int]]:
        engine = create_engine(server.db_url, pooled=False)
        try:
            async with session_factory(engine)() as session:
                rows = await session.execute(
                    select(ExamItem, QuestionVersion)
                    .join(
                        QuestionVersion,
                        col(QuestionVersion.id) == col(ExamItem.question_version_id),
                    )
                    .where(col(ExamItem.attempt_id) == attempt_id)
                )
                return {
                    item.question_version_id: [item.option_order.index(c) for c in version.correct]
                    for item, version in rows.all()
                }
        finally:
            await engine.dispose()

    answers: dict[int, list[int]] = _in_thread(run)
    return answers


def test_training_attendance_then_the_exam_on_a_phone_then_a_question_edit(
    live_server: LiveServer, contexts: Any, artifacts: Path
) -> None:
    scene = _prepare(live_server)

    # The township officer records who attended, on a PC.
    officer = contexts(PC).new_page()
    _log_in(officer, live_server, live_server.logins["township_officer"])
    officer.get_by_role("link", name="培训", exact=True).click()
    _shot(officer, artifacts, "sessions-pc")
    officer.get_by_role("link", name="劳动合同与工资支付专题").click()
    officer.get_by_role("checkbox", name="刘考生41").check()
    officer.get_by_role("checkbox", name="张经纪").check()
    officer.get_by_label("张经纪的出勤天数").fill("2")
    officer.get_by_role("button", name="保存出勤").click()
    expect(officer.get_by_role("status")).to_contain_text("已保存出勤记录（2 人）")
    _shot(officer, artifacts, "attendance-pc")
    officer.get_by_role("link", name="学时达标").click()
    row = officer.get_by_role("row", name="张经纪")
    expect(row).to_contain_text("2 天")
    _shot(officer, artifacts, "compliance-pc")

    # The applicant sits the exam on a phone.
    phone_context = contexts(PHONE_SIZE)
    phone = phone_context.new_page()
    problems: list[str] = []
    phone.on("pageerror", lambda exc: problems.append(str(exc)))
    phone.goto(f"{live_server.url}/exams")
    _fits(phone)
    _shot(phone, artifacts, "start-phone")
    phone.get_by_label("跟踪码").fill(scene["tracking_code"])
    phone.get_by_label("手机号").fill("13900000000")
    phone.get_by_role("button", name="进入考试").click()
    expect(phone.locator("#f-tracking_code + .field-error, .field-error")).to_contain_text(
        "没有找到"
    )
    phone.get_by_label("手机号").fill(PHONE)
    phone.get_by_role("button", name="进入考试").click()
    expect(phone.locator("#countdown")).to_be_visible()
    attempt_id = int(phone.url.rstrip("/").rsplit("/", 1)[-1])
    right = _right_answers(live_server, attempt_id)
    _fits(phone)
    _shot(phone, artifacts, "paper-phone")
    forms = phone.locator("form.exam-form")
    expect(forms).to_have_count(20)
    for index in range(20):
        form = forms.nth(index)
        question_id = int(form.get_attribute("data-question") or 0)
        if index == 3:
            # The connection drops: the answer is not saved, and goes through once back.
            phone_context.set_offline(True)
        for choice in right[question_id]:
            form.locator("input[name=choices]").nth(choice).check()
        if index == 3:
            expect(form.locator(".saved")).to_contain_text("未保存")
            phone_context.set_offline(False)
        expect(form.locator(".saved")).to_contain_text("已保存", timeout=12000)
    _shot(phone, artifacts, "answered-phone")
    phone.reload()
    expect(phone.locator(".exam-form input:checked")).to_have_count(
        sum(len(v) for v in right.values())
    )
    phone.get_by_role("button", name="交卷").click()
    expect(phone.locator(".exam-score")).to_contain_text("100")
    expect(phone.locator(".exam-score")).to_contain_text("合格")
    expect(phone.get_by_role("row", name="政策法规")).to_contain_text("12")
    _fits(phone)
    _shot(phone, artifacts, "result-phone")
    assert problems == []

    # The city admin edits a question: a new version; no correct option is refused.
    admin = contexts(PC).new_page()
    _log_in(admin, live_server, live_server.logins["city_pc"])
    admin.get_by_role("link", name="考试题库").click()
    _shot(admin, artifacts, "bank-pc")
    admin.get_by_label("关键词").fill("LC-02")
    admin.get_by_role("button", name="筛选").click()
    admin.get_by_role("link", name="已建立劳动关系但未同时订立书面劳动合同").click()
    admin.get_by_label("题干").fill(
        "已建立劳动关系但未同时订立书面劳动合同的，应当自用工之日起多长时间内订立？"
    )
    admin.get_by_role("button", name="保存为新版本").click()
    expect(admin.get_by_role("status")).to_contain_text("已保存为第 2 版")
    expect(admin.locator(".q-version")).to_have_count(2)
    admin.locator("input[name=correct]:checked").uncheck()
    admin.get_by_role("button", name="保存为新版本").click()
    expect(admin.locator(".field-error[role=alert]")).to_contain_text("没有正确答案")
    _shot(admin, artifacts, "question-pc")
