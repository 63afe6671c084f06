"""In headless Chromium: the billing pages over the billing demo (billing/demo.py).

Finance user A (渝中区, PC 1366x768) opens the dashboard (pools, awaiting funds,
batches), records an appropriation that serves a subsidy waiting for funds, asks for a
transfer between pools, builds a payout batch for 渝中区 and September and reviews it
(per broker, per source); finance user B (city level, on a phone) approves the transfer
and the batch; A executes it online, downloads the bank payment file and checks its
rows, then opens the reconciliation of the batch's month and of this month (where the
payment is booked): every identity holds and the CSV and XLSX exports download.
A broker opens their earnings on a phone (360x740): subsidies and market income side
by side. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyotp
import pytest
from openpyxl import load_workbook
from playwright.sync_api import expect
from sqlalchemy import select
from sqlmodel import col

from billing import subsidies
from billing.demo import demo_billing
from billing.models import BrokerBankAccount, Subsidy
from marketplace.access import SYSTEM
from marketplace.accounts import service as accounts
from marketplace.accounts.models import UserCreate
from marketplace.brokers.models import Broker
from marketplace.clock import local, utcnow
from marketplace.crypto import DataCipher, decode_key
from marketplace.db import create_engine, session_factory, unit_of_work
from tests.browser.conftest import LiveServer, Login
from tests.browser.test_coverage_journey import _log_in, _no_horizontal_scroll, _shot, _unexpected
from tests.conftest import PASSWORD, TEST_DATA_KEY, YUZHONG

pytestmark = pytest.mark.browser

PC = {"width": 1366, "height": 768}
PHONE = {"width": 360, "height": 740}
PERIOD = "2026-09"  # the demo paid June to August; September is payable, unpaid
SHORT_SOURCE = "purchase_agriculture"  # a pool opened by a subsidy, with no money yet


@dataclass(frozen=True)
class Scene:
    maker: Login  # 渝中区 finance
    checker: Login  # city-level finance
    broker_id: int
    bank_account_no: str
    waiting_fen: int


async def _prepare(url: str) -> Scene:
    """Two finance accounts named as the billing demo expects, the billing demo over
    the module's broker (张经纪, 渝中区), and one subsidy waiting for funds."""
    engine = create_engine(url, pooled=False)
    cipher = DataCipher(decode_key(TEST_DATA_KEY))
    logins: dict[str, Login] = {}
    try:
        async with unit_of_work(session_factory(engine)) as session:
            for username, region, name in (
                ("yuzhong_finance", YUZHONG, "渝中财务甲"),
                ("city_finance", "50", "市局财务乙"),
            ):
                _, uri = await accounts.create_user(
                    session=session,
                    actor=SYSTEM,
                    cipher=cipher,
                    data=UserCreate(
                        username=username,
                        display_name=name,
                        role="finance",
                        region_code=region,
                        password=PASSWORD,
                    ),
                )
                assert uri is not None  # finance logs in with a second factor
                logins[username] = Login(username, PASSWORD, pyotp.parse_uri(uri).secret)
        async with unit_of_work(session_factory(engine)) as session:
            await demo_billing(session, cipher, seed=7, districts=(YUZHONG,))
        async with unit_of_work(session_factory(engine)) as session:
            broker = (
                await session.execute(
                    select(Broker).where(col(Broker.village_code).startswith(YUZHONG))
                )
            ).scalar_one()
            assert broker.id is not None
            bank = (
                await session.execute(
                    select(BrokerBankAccount).where(col(BrokerBankAccount.broker_id) == broker.id)
                )
            ).scalar_one()
            number = cipher.decrypt(bank.account_no_enc, context=f"bank:{broker.id}")
            await subsidies.accrue(
                session,
                {
                    "task_id": 77,
                    "submission_id": 77_001,
                    "broker_id": broker.id,
                    "task_type_code": "purchase_agriculture_survey",
                    "task_type_version": 1,
                    "district_code": YUZHONG,
                    "funding_source": SHORT_SOURCE,
                    "approved_quantity": 4,
                    "rate_fen": 3_000,
                    "amount_fen": 12_000,
                    "approved_at": datetime(2026, 11, 3, 2, tzinfo=UTC).isoformat(),
                },
                event_id=None,
            )
            waiting = (
                await session.execute(
                    select(Subsidy).where(col(Subsidy.status) == "awaiting_funds")
                )
            ).scalar_one()
            return Scene(
                maker=logins["yuzhong_finance"],
                checker=logins["city_finance"],
                broker_id=broker.id,
                bank_account_no=number,
                waiting_fen=waiting.amount_fen,
            )
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def scene(live_server: LiveServer) -> Scene:
    # Before the browser fixture: no asyncio.run while Playwright's loop is open.
    return asyncio.run(_prepare(live_server.db_url))


def _page(browser: Any, viewport: dict[str, int]) -> Any:
    context = browser.new_context(
        viewport=viewport, locale="zh-CN", timezone_id="Asia/Shanghai", accept_downloads=True
    )
    context.set_default_timeout(8000)
    page = context.new_page()
    page.problems = []
    page.on("pageerror", lambda exc: page.problems.append(str(exc)))
    page.on("console", lambda msg: page.problems.append(msg.text) if msg.type == "error" else None)
    return page


def _fen(text: str) -> int:
    """'¥1,234.50' (anywhere in the text) → 123450."""
    match = re.search(r"¥([\d,]+)\.(\d{2})", text)
    assert match, f"no amount in {text!r}"
    return int(match.group(1).replace(",", "")) * 100 + int(match.group(2))


def _stat(page: Any, label: str) -> int:
    return _fen(page.locator(".stat", has_text=label).locator(".stat-value").inner_text())


def _cjk_renders(page: Any) -> None:
    """Chinese text must render with a real CJK font, not as boxes: a heading of
    four CJK characters is about four em wide (tofu boxes are narrower or missing
    glyph fallbacks would measure as 0)."""
    width, size = page.evaluate(
        "() => { const h = document.querySelector('h1'); const r = document.createRange();"
        " r.selectNodeContents(h); return [r.getBoundingClientRect().width,"
        " parseFloat(getComputedStyle(h).fontSize)]; }"
    )
    chars = len(page.locator("h1").inner_text().strip())
    assert width >= chars * size * 0.8, f"h1 is {width}px wide for {chars} characters"


def _download(page: Any, link: Any, tmp_path: Path) -> tuple[str, bytes]:
    with page.expect_download() as info:
        link.click()
    download = info.value
    target = tmp_path / download.suggested_filename
    download.save_as(str(target))
    return download.suggested_filename, target.read_bytes()


def test_finance_builds_approves_executes_and_reconciles(
    scene: Scene, browser: Any, live_server: LiveServer, artifacts: Path, tmp_path: Path
) -> None:
    a = _page(browser, PC)
    _log_in(a, live_server, scene.maker)
    a.get_by_role("navigation", name="功能", exact=True).get_by_role(
        "link", name="资金管理", exact=True
    ).click()
    a.get_by_role("heading", name="资金管理", exact=True).wait_for()
    _cjk_renders(a)
    pools = a.locator("table.pools tbody tr")
    expect(pools).to_have_count(3)
    short = a.locator("table.pools tr", has_text="渝中区·农业农村部门购买服务")
    expect(short).to_have_class(re.compile(r"\bshort\b"))
    expect(short.locator(".tag")).to_have_text(
        f"1 笔，共需 ¥{scene.waiting_fen // 100}.00，缺 ¥{scene.waiting_fen // 100}.00"
    )
    expect(a.locator("table.grid", has_text="批次 #")).to_contain_text("已执行")  # the demo's
    _no_horizontal_scroll(a)
    _shot(a, artifacts, "finance-dashboard-pc")

    # An appropriation into the short pool: the waiting subsidy is reserved at once.
    form = a.locator("form[action='/finance/appropriations']")
    form.get_by_label("资金池").select_option(label="渝中区·农业农村部门购买服务")
    form.get_by_label("金额（元）").fill("500")
    form.get_by_label("拨款文号").fill("渝农财〔2026〕8号")
    form.get_by_role("button", name="拨款入账").click()
    a.get_by_text("拨款已入账").wait_for()
    expect(short.locator(".tag")).to_have_text("无")
    expect(short.locator("td[data-label=已预留]")).to_have_text(f"¥{scene.waiting_fen // 100}.00")
    expect(short.locator("td[data-label=可用]")).to_have_text(
        f"¥{500 - scene.waiting_fen // 100}.00"
    )

    # A transfer asks for a second finance user; the maker is not offered the button.
    form = a.locator("form[action='/finance/transfers']")
    form.get_by_label("调出资金池").select_option(index=0)
    form.get_by_label("调入资金池").select_option(label="渝中区·农业农村部门购买服务")
    form.get_by_label("金额（元）").fill("99999999")
    form.get_by_label("调剂文号").fill("渝人社财〔2026〕31号")
    form.get_by_role("button", name="提交调剂申请").click()
    a.get_by_role("alert").filter(has_text="调出资金池可用余额不足").wait_for()
    form = a.locator("form[action='/finance/transfers']")
    expect(form.get_by_label("金额（元）")).to_have_value("99999999")  # kept for correction
    form.get_by_label("金额（元）").fill("100")
    form.get_by_role("button", name="提交调剂申请").click()
    a.get_by_text("调剂申请已提交，待另一位财务人员审核").wait_for()
    transfer = a.locator("tr[id^=transfer-]")
    expect(transfer).to_contain_text("由您提交，待他人审核")
    expect(transfer).to_contain_text("→ 渝中区·农业农村部门购买服务")

    # The batch: 渝中区, September.
    batches = a.locator("form[action='/finance/batches']")
    batches.get_by_label("区县代码").fill(YUZHONG)
    batches.get_by_label("期间").fill(PERIOD)
    batches.get_by_role("button", name="生成批次").click()
    a.get_by_role("heading", name=re.compile(rf"发放批次 #\d+ · {YUZHONG} · {PERIOD}")).wait_for()
    batch_url = a.url
    expect(a.get_by_text("本批次由您生成，需另一位财务人员审核。")).to_be_visible()
    lines = a.locator("table.grid tbody tr")
    expect(lines).to_have_count(1)  # one broker in the demo district
    expect(lines.first.locator("th")).to_have_text("张经纪")
    net = _stat(a, "实发合计")
    assert net == _fen(lines.first.locator("td[data-label=实发]").inner_text())
    assert _stat(a, "应发合计") - _stat(a, "冲抵应收") == net
    by_source = a.locator(".stat", has_text="按资金来源").inner_text()
    assert "就业补助资金" in by_source  # the welfare post's month at least
    per_source = re.findall(r"¥[\d,]+\.\d{2}", by_source)
    assert sum(_fen(v) for v in per_source) == _stat(a, "应发合计")
    _no_horizontal_scroll(a)
    _shot(a, artifacts, "finance-batch-review-pc")

    # B, on a phone: approves the transfer and the batch.
    b = _page(browser, PHONE)
    _log_in(b, live_server, scene.checker)
    b.goto(f"{live_server.url}/finance")
    b.get_by_role("heading", name="资金管理", exact=True).wait_for()
    _no_horizontal_scroll(b)
    _shot(b, artifacts, "finance-dashboard-phone")
    b.locator("tr[id^=transfer-]").get_by_role("button", name="同意调剂").click()
    b.get_by_text("已处理调剂申请").wait_for()
    b.get_by_text("没有待审核的拨款或调剂").wait_for()
    b.goto(batch_url)
    b.get_by_role("button", name="审核通过").click()
    b.get_by_text("已审核待执行").first.wait_for()
    _no_horizontal_scroll(b)
    _shot(b, artifacts, "finance-batch-approved-phone")

    # A executes online and downloads the bank payment file.
    a.goto(batch_url)
    a.get_by_role("button", name="线上执行（生成代发文件）").click()
    a.get_by_text("状态：已执行").wait_for()
    expect(lines.first.locator("td[data-label=状态]")).to_contain_text("已支付")
    name, body = _download(a, a.get_by_role("link", name=re.compile("下载代发文件")), tmp_path)
    assert name.endswith(".csv")
    assert body.startswith("\ufeff".encode())  # Excel opens UTF-8 Chinese correctly
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0] == ["户名", "账号", "金额", "摘要"]
    assert len(rows) == 2
    account_name, number, amount, memo = rows[1]
    assert account_name == "张经纪"
    assert number == scene.bank_account_no
    assert amount == f"{net // 100}.{net % 100:02d}"
    assert PERIOD in memo
    assert f"批次{batch_url.rsplit('/', 1)[1]}" in memo
    _shot(a, artifacts, "finance-batch-executed-pc")
    # The broker's statement, from the batch line: the September month is paid.
    a.get_by_role("link", name="张经纪").click()
    a.get_by_role("heading", name="张经纪 的收入").wait_for()
    paid = a.locator(".income-item", has_text=f"公益性岗位补贴 {PERIOD}")
    expect(paid.locator(".tag")).to_have_text("已支付")
    expect(a.locator("#market-head")).to_be_visible()
    _no_horizontal_scroll(a)
    _shot(a, artifacts, "earnings-finance-pc")

    # Reconciliation: the batch's month, then this month, where the payment is booked.
    this_month = local(utcnow()).strftime("%Y-%m")
    a.goto(f"{live_server.url}/finance")
    a.get_by_role("link", name="对账与导出").click()
    a.get_by_label("期间").fill(PERIOD)
    a.get_by_label("区县代码").fill(YUZHONG)
    a.get_by_role("button", name="查询").click()
    a.get_by_text("全部勾稽平衡").wait_for()
    a.get_by_label("期间").fill(this_month)
    a.get_by_role("button", name="查询").click()
    a.get_by_text("全部勾稽平衡").wait_for()
    recon = a.locator("table.grid tbody tr")
    expect(recon).to_have_count(3)
    for i in range(3):
        expect(recon.nth(i).locator("td[data-label=核对]")).to_have_text("平衡")
    employment = a.locator("table.grid tbody tr", has_text="就业补助资金")
    assert _fen(employment.locator("td[data-label=支付]").inner_text()) > 0
    _cjk_renders(a)
    _no_horizontal_scroll(a)
    _shot(a, artifacts, "finance-reconciliation-pc")
    name, body = _download(a, a.get_by_role("link", name="导出 CSV"), tmp_path)
    assert name == f"reconciliation-{this_month}.csv"
    text = body.decode("utf-8-sig")
    assert YUZHONG in text
    assert "就业补助资金" in text
    name, body = _download(a, a.get_by_role("link", name="导出 Excel"), tmp_path)
    assert name == f"reconciliation-{this_month}.xlsx"
    book = load_workbook(io.BytesIO(body), read_only=True)
    cells = [
        str(c) for ws in book.worksheets for row in ws.iter_rows(values_only=True) for c in row
    ]
    assert YUZHONG in cells
    a.set_viewport_size(PHONE)
    a.reload()
    a.get_by_text("全部勾稽平衡").wait_for()
    _no_horizontal_scroll(a)
    _shot(a, artifacts, "finance-reconciliation-phone")

    # The transfer over the available balance was refused on purpose (409).
    assert [p for p in _unexpected(a) if not p.endswith("(Conflict)")] == []
    assert _unexpected(b) == []
    a.context.close()
    b.context.close()


def test_broker_sees_subsidies_and_market_income_side_by_side_on_a_phone(
    scene: Scene, browser: Any, live_server: LiveServer, artifacts: Path
) -> None:
    page = _page(browser, PHONE)
    _log_in(page, live_server, live_server.logins["broker"])
    page.get_by_role("navigation", name="功能", exact=True).get_by_role(
        "link", name="我的收入", exact=True
    ).click()
    page.get_by_role("heading", name="我的收入").wait_for()
    _cjk_renders(page)
    subsidy = page.locator(".income-pair .stat", has_text="公共服务补贴")
    market = page.locator(".income-pair .stat", has_text="市场服务费")
    expect(subsidy).to_be_visible()
    expect(market).to_be_visible()
    s_box, m_box = subsidy.bounding_box(), market.bounding_box()
    assert s_box is not None
    assert m_box is not None
    assert abs(s_box["y"] - m_box["y"]) < 2  # side by side, not stacked
    assert s_box["x"] + s_box["width"] <= m_box["x"]
    assert _fen(subsidy.inner_text()) > 0
    assert _fen(market.inner_text()) > 0
    # Each item traceable: subsidies to their task or welfare-post month, income to
    # its placement.
    expect(page.get_by_text(re.compile(r"公益性岗位补贴 2026-\d\d")).first).to_be_visible()
    expect(
        page.get_by_text("高素质农民信息采集（购买服务）").first
    ).to_be_visible()  # named, not coded
    expect(page.locator(".income-list", has_text="录用").first).to_be_visible()
    _no_horizontal_scroll(page)
    _shot(page, artifacts, "earnings-phone")
    assert _unexpected(page) == []
    page.context.close()
