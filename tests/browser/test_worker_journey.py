"""In headless Chromium at phone width (390x844) and at 1366x768: a broker adds a
worker (the first try has a wrong ID number, shown beside its field), finds the
person in the list, opens the record and verifies it. Screenshots go to
test-artifacts/."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import VILLAGE, LiveServer
from tests.browser.test_coverage_journey import (
    VIEWPORTS,
    _log_in,
    _no_horizontal_scroll,
    _shot,
    _unexpected,
    page,  # noqa: F401  (the fixture)
    screen,  # noqa: F401  (the fixture)
)
from tests.marketplace.test_workers_rules import make_id

pytestmark = pytest.mark.browser

PEOPLE = {
    "phone": ("李秀英", make_id(date(1979, 3, 8), 462), "13698765432"),
    "pc": ("陈志强", make_id(date(1988, 11, 20), 571), "13512340000"),
}
IMPORTED = {"phone": make_id(date(1982, 5, 5), 113), "pc": make_id(date(1983, 6, 6), 225)}
assert set(PEOPLE) == set(VIEWPORTS)


def test_broker_adds_finds_and_verifies_a_worker(
    page: Any,  # noqa: F811
    live_server: LiveServer,
    artifacts: Path,
    screen: str,  # noqa: F811
) -> None:
    name, id_number, phone = PEOPLE[screen]
    _log_in(page, live_server, live_server.logins["broker"])
    page.get_by_role("navigation", name="功能", exact=True).get_by_role(
        "link", name="我的劳动者", exact=True
    ).click()
    page.get_by_role("heading", name="我的劳动者").wait_for()
    page.get_by_role("link", name="登记劳动者").click()
    page.get_by_role("heading", name="登记劳动者").wait_for()

    page.get_by_label("姓名", exact=True).fill(name)
    page.get_by_label("身份证号").fill(id_number[:-1] + ("1" if id_number[-1] != "1" else "2"))
    page.get_by_label("手机号").fill(phone)
    page.get_by_label("就业状态").select_option("seeking")
    page.get_by_label("技能").fill("保洁、家政")
    page.get_by_label("期望工资（元）最低").fill("150")
    page.get_by_label("最高", exact=True).fill("200")
    page.get_by_label("计薪单位").select_option("day")
    page.get_by_label("本人同意把信息推荐给用人单位").check()
    page.get_by_label("同意方式").select_option("口头")
    page.get_by_role("button", name="保存").click()
    page.locator("#err-id_number").wait_for()  # beside its field, the rest kept
    assert page.get_by_label("姓名", exact=True).input_value() == name
    _no_horizontal_scroll(page)
    _shot(page, artifacts, f"worker-new-error-{screen}")

    page.get_by_label("身份证号").fill(id_number)
    page.get_by_role("button", name="保存").click()
    page.get_by_text("已登记。").wait_for()
    page.get_by_role("heading", name=name).wait_for()

    page.get_by_role("link", name="我的劳动者").first.click()
    page.get_by_label("姓名").fill(name[:2])
    page.get_by_role("heading", name="共 1 人").wait_for()  # HTMX swapped the results
    item = page.locator(".worker-item", has_text=name)
    assert id_number not in page.content()
    expect(item.get_by_text("超过 12 个月未核实")).to_be_visible()
    _no_horizontal_scroll(page)
    _shot(page, artifacts, f"worker-list-{screen}")

    item.get_by_role("link").first.click()
    page.get_by_role("heading", name=name).wait_for()
    _no_horizontal_scroll(page)
    _shot(page, artifacts, f"worker-detail-{screen}")
    page.get_by_role("button", name="已与本人核实").click()
    page.locator("#verify-box").get_by_text("从未核实").wait_for(state="detached")
    assert not page.locator("#verify-box .tag-warn").count()
    _shot(page, artifacts, f"worker-verified-{screen}")
    assert _unexpected(page) == []


def test_broker_imports_a_file_and_reads_the_report(
    page: Any,  # noqa: F811
    live_server: LiveServer,
    artifacts: Path,
    screen: str,  # noqa: F811
) -> None:
    _log_in(page, live_server, live_server.logins["broker"])
    page.goto(f"{live_server.url}/workers/import")
    page.get_by_role("heading", name="批量导入劳动者").wait_for()
    csv = (
        "姓名,身份证号,手机号,户籍村代码,就业状态\n"
        f"赵大勇,{IMPORTED[screen]},,{VILLAGE},外出务工\n"
        f"钱二,{IMPORTED[screen][:-1]}Z,,{VILLAGE},未知\n"
    )
    page.get_by_label("选择文件").set_input_files(
        {"name": "workers.csv", "mimeType": "text/csv", "buffer": csv.encode()}
    )
    page.get_by_role("button", name="上传并导入").click()
    # The page now follows this upload's job (its URL pushed), which runs in the
    # background and is polled every second until done. (An earlier job of the same
    # broker may have shown the same heading before the upload.)
    page.wait_for_url(re.compile(r"/workers/import/jobs/\d+$"))
    page.get_by_role("heading", name="导入结果：workers.csv").wait_for(timeout=30_000)
    page.get_by_text("第 3 行").wait_for()
    _no_horizontal_scroll(page)
    _shot(page, artifacts, f"worker-import-{screen}")
    assert _unexpected(page) == []
