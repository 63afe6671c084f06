"""In headless Chromium at phone width (390x844): a district publishes a task; the
broker finds it among the open tasks near them, claims it, photographs the evidence
(the camera input) and submits; the district admin opens the review queue, sees the
photo beside the task and approves part of it; the broker sees the result and the
subsidy. Screenshots go to test-artifacts/."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.browser.conftest import VILLAGE, LiveServer
from tests.browser.test_coverage_journey import _log_in, _no_horizontal_scroll, _shot, _unexpected

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def published(live_server: LiveServer) -> int:
    """A task for the broker's village, published over the API by a district admin."""
    admin = live_server.logins["admin_pc"]
    with httpx.Client(base_url=live_server.url) as http:
        token = http.post(
            "/api/v1/auth/login",
            json={
                "username": admin.username,
                "password": admin.password,
                "otp": pyotp.TOTP(admin.totp_secret or "").now(),
            },
        ).json()["access_token"]
        made = http.post(
            "/api/v1/tasks",
            json={
                "task_type": "policy_outreach",
                "region_code": VILLAGE,
                "quantity": 2,
                "deadline": (datetime.now(UTC) + timedelta(days=7)).isoformat(),
                "instructions": "在社区活动室举办两场就业政策宣讲，现场拍照并上传签到表。",
            },
            headers={"Authorization": f"Bearer {token}"},
        )
        assert made.status_code == 201, made.text
        return int(made.json()["id"])


def _phone(browser: Any) -> Any:
    context = browser.new_context(viewport=PHONE, locale="zh-CN", timezone_id="Asia/Shanghai")
    context.set_default_timeout(5000)
    page = context.new_page()
    page.problems = []
    page.on("pageerror", lambda exc: page.problems.append(str(exc)))
    page.on("console", lambda msg: page.problems.append(msg.text) if msg.type == "error" else None)
    return page


def test_claim_submit_and_approve_on_a_phone(
    published: int, browser: Any, live_server: LiveServer, artifacts: Path, tmp_path: Path
) -> None:
    photo = tmp_path / "现场.jpg"
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), (60, 120, 200)).save(buffer, "JPEG")
    photo.write_bytes(buffer.getvalue())

    broker = _phone(browser)
    _log_in(broker, live_server, live_server.logins["broker"])
    broker.get_by_role("navigation", name="功能", exact=True).get_by_role(
        "link", name="任务", exact=True
    ).click()
    broker.get_by_role("link", name="附近可领的任务").wait_for()
    broker.get_by_role("link", name="政策咨询与宣传").click()
    broker.get_by_role("button", name="领取任务").wait_for()
    _no_horizontal_scroll(broker)
    _shot(broker, artifacts, "task-open-phone")
    broker.get_by_role("button", name="领取任务").click()
    broker.get_by_text("已领取。").wait_for()
    camera = broker.locator("input[type=file]")
    assert camera.get_attribute("capture") == "environment"
    assert camera.get_attribute("accept") == "image/*,application/pdf"
    camera.set_input_files(str(photo))
    broker.get_by_label("说明").fill("两场宣讲，共 46 人参加")
    _shot(broker, artifacts, "task-submit-phone")
    broker.get_by_role("button", name="提交", exact=True).click()
    broker.get_by_text("已提交，等待审核。").wait_for()
    expect(broker.locator(".sub-status")).to_have_text("待审核")
    expect(broker.locator(".evidence img")).to_be_visible()
    _no_horizontal_scroll(broker)

    admin = _phone(browser)
    _log_in(admin, live_server, live_server.logins["admin_phone"])
    admin.goto(f"{live_server.url}/tasks/review")
    admin.get_by_role("heading", name="共 1 条待审核").wait_for()
    admin.get_by_role("link", name="政策咨询与宣传").click()
    admin.get_by_role("heading", name="审核").wait_for()
    image = admin.locator(".evidence img")
    expect(image).to_be_visible()
    # Visible is not loaded: wait for the bytes (served through the authorised route).
    width = image.evaluate(
        "img => img.complete && img.naturalWidth ? img.naturalWidth : new Promise("
        "done => img.addEventListener('load', () => done(img.naturalWidth), {once: true}))"
    )
    assert width == 640
    admin.get_by_label("核定数量（不超过提交的 2）").fill("1")
    admin.get_by_label("审核意见（退回时必填）").fill("第二场签到表缺失")
    _no_horizontal_scroll(admin)
    _shot(admin, artifacts, "task-review-phone")
    admin.get_by_role("button", name="保存审核结果").click()
    admin.get_by_text("审核结果已保存").wait_for()
    admin.get_by_role("heading", name="共 0 条待审核").wait_for()

    broker.goto(f"{live_server.url}/tasks/{published}")
    expect(broker.locator(".task-head .task-status")).to_have_text("部分通过")
    broker.get_by_text("核定 1 场，补贴 200.00 元").wait_for()
    broker.get_by_text("审核意见：第二场签到表缺失").wait_for()
    _shot(broker, artifacts, "task-result-phone")
    assert _unexpected(broker) == []
    assert _unexpected(admin) == []
    broker.context.close()
    admin.context.close()
