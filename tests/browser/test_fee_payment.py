"""In headless Chromium against localstripe: an employer opens a placement fee's page,
types a test card into the Stripe.js card form (localstripe's look-alike, loaded from
the configured LAOWU_STRIPE_JS_URL), pays, and sees the fee paid once localstripe's
signed webhook has reached our server and booked it; a declined card shows a Chinese
error and books nothing. Phone (390 px) and desktop screenshots go to test-artifacts/."""

from __future__ import annotations

import asyncio
import shutil
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.sync_api import expect
from sqlalchemy import select

from billing.ledger import service as ledger
from billing.models import MarketFee
from marketplace.access import SYSTEM
from marketplace.accounts import service as accounts
from marketplace.accounts.models import UserCreate
from marketplace.crypto import DataCipher, decode_key
from marketplace.db import create_engine, session_factory, unit_of_work
from tests.billing.helpers import employer_of
from tests.billing.localstripe_server import running
from tests.browser.conftest import LiveServer, Login, _prepare
from tests.browser.test_coverage_journey import _log_in, _no_horizontal_scroll, _shot
from tests.conftest import PASSWORD, TEST_DATA_KEY, YUZHONG
from web.app import create_app
from web.settings import DatabaseSettings, SecuritySettings, Settings, StripeSettings

pytestmark = pytest.mark.browser
SECRET = "whsec_laowu_browser"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
# Placement fees of the employer's organisation: one per journey.
FEES = {"phone_ok": (901, 30_000), "pc_ok": (902, 45_000), "declined": (903, 12_000)}


@pytest.fixture(scope="module")
def localstripe() -> Iterator[str]:
    with running() as url:
        yield url


async def _seed(url: str) -> Login:
    """The employer, its organisation and three fees due (as placement.confirmed
    leaves them)."""
    engine = create_engine(url, pooled=False)
    try:
        async with unit_of_work(session_factory(engine)) as session:
            user, _ = await accounts.create_user(
                session=session,
                actor=SYSTEM,
                cipher=DataCipher(decode_key(TEST_DATA_KEY)),
                data=UserCreate(
                    username="b_employer",
                    display_name="渝中建工财务",
                    role="employer",
                    region_code=YUZHONG,
                    password=PASSWORD,
                ),
            )
            org = await employer_of(
                session, user.id, name="渝中建工", credit_code="91500103MA5UPAY001"
            )
            for placement_id, amount in FEES.values():
                session.add(
                    MarketFee(placement_id=placement_id, organization_id=org.id, amount_fen=amount)
                )
    finally:
        await engine.dispose()
    return Login("b_employer", PASSWORD, None)


@pytest.fixture(scope="module")
def live_server(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory, localstripe: str
) -> Iterator[LiveServer]:
    """As tests/browser/conftest.py's, with Stripe pointed at localstripe and its
    webhook registered to this server."""
    tmp = tmp_path_factory.mktemp("live-fees")
    db = tmp / "laowu.db"
    shutil.copyfile(sqlite_template, db)
    url = f"sqlite+aiosqlite:///{db}"
    logins = asyncio.run(_prepare(url))
    logins["employer"] = asyncio.run(_seed(url))
    settings = Settings(
        env="test",
        db=DatabaseSettings(url=url, pooled=False),
        security=SecuritySettings(secret_key="browser-secret-" + "x" * 32, data_key=TEST_DATA_KEY),
        stripe=StripeSettings(
            api_base=localstripe,
            api_key="sk_test_laowu",
            webhook_secret=SECRET,
            publishable_key="pk_test_laowu",
            js_url=f"{localstripe}/js.stripe.com/v3/",
        ),
        media_dir=tmp / "media",
        var_dir=tmp,
        outbox_in_process=False,
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(settings), log_level="warning", lifespan="on", ws="none", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started or not thread.is_alive():
            break
        threading.Event().wait(0.05)
    if not server.started:
        pytest.fail("the test server did not start")
    registered = httpx.post(
        f"{localstripe}/_config/webhooks/laowu",
        data={"url": f"http://127.0.0.1:{port}/api/v1/webhooks/stripe", "secret": SECRET},
    )
    assert registered.status_code == 200, registered.text
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", logins, db_url=url)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _page(browser: Any, viewport: dict[str, int]) -> Any:
    context = browser.new_context(viewport=viewport, locale="zh-CN", timezone_id="Asia/Shanghai")
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.problems = []
    page.on("pageerror", lambda exc: page.problems.append(str(exc)))
    page.on("console", lambda msg: page.problems.append(msg.text) if msg.type == "error" else None)
    return page


def _type_card(page: Any, number: str) -> None:
    """The card form Stripe.js mounted (localstripe's draws plain inputs)."""
    form = page.locator("#card-element")
    form.locator("input").first.wait_for()
    for placeholder, value in (
        ("number", number),
        ("exp_month", "12"),
        ("exp_year", "30"),
        ("cvc", "123"),
        ("postal_code", "400010"),
    ):
        form.locator(f'input[placeholder="{placeholder}"]').fill(value)


def _fee_row(server: LiveServer, placement_id: int) -> tuple[MarketFee, int | None]:
    async def read() -> tuple[MarketFee, int | None]:
        engine = create_engine(server.db_url, pooled=False)
        try:
            async with session_factory(engine)() as session:
                fee = (
                    await session.execute(
                        select(MarketFee).where(MarketFee.placement_id == placement_id)  # type: ignore[arg-type]
                    )
                ).scalar_one()
                clearing = await ledger.get_account(session, "market:stripe_clearing")
                balance = (
                    await ledger.current_balance(session, clearing.id or 0) if clearing else None
                )
                return fee, balance
        finally:
            await engine.dispose()

    # Playwright's sync API holds this thread's event loop: read from another thread.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, read()).result()


def _pay(page: Any, server: LiveServer, key: str, card: str, shot: Any = None) -> None:
    placement_id, _ = FEES[key]
    page.goto(f"{server.url}/fees/{placement_id}")
    page.get_by_role("heading", name="支付录用服务费").wait_for()
    expect(page.locator("#fee-status")).to_have_text("待付款")
    _type_card(page, card)
    _no_horizontal_scroll(page)
    if shot is not None:
        shot()
    page.get_by_role("button", name="付款").click()


@pytest.mark.parametrize(
    ("key", "viewport"), [("phone_ok", PHONE), ("pc_ok", DESKTOP)], ids=["phone", "pc"]
)
def test_employer_pays_by_card_and_sees_the_fee_booked(
    browser: Any, live_server: LiveServer, artifacts: Path, key: str, viewport: dict[str, int]
) -> None:
    page = _page(browser, viewport)
    _log_in(page, live_server, live_server.logins["employer"])
    placement_id, amount = FEES[key]
    ours: list[str] = []  # what the page sends to our server: Stripe ids, never the card
    page.on(
        "request",
        lambda r: (
            ours.append(f"{r.url} {r.post_data or ''}")
            if r.url.startswith(live_server.url)
            else None
        ),
    )
    screen = "phone" if viewport is PHONE else "pc"
    _pay(
        page,
        live_server,
        key,
        "4242424242424242",
        lambda: _shot(page, artifacts, f"fee-card-{screen}"),
    )
    # Paid only when our webhook has booked it (localstripe sends it after ~1 s).
    expect(page.locator("#fee-paid")).to_be_visible(timeout=20_000)
    expect(page.locator("#fee-status")).to_have_text("已付款")
    expect(page.locator("#card-form")).to_be_hidden()
    expect(page.locator("#card-error")).to_be_hidden()
    _no_horizontal_scroll(page)
    _shot(page, artifacts, f"fee-paid-{screen}")
    fee, _ = _fee_row(live_server, placement_id)
    assert (fee.status, fee.amount_fen, fee.entry_id is not None) == ("succeeded", amount, True)
    # Reloaded, the page says the same and offers no second payment.
    page.reload()
    expect(page.locator("#fee-status")).to_have_text("已付款")
    expect(page.locator("#card-form")).to_have_count(0)
    assert [p for p in page.problems if "localstripe" not in p] == []
    assert any("/card/charge" in line and "seti_" in line for line in ours)
    assert not [line for line in ours if "4242" in line or "123" in line.split(" ", 1)[1]]


def test_declined_card_shows_a_chinese_error_and_books_nothing(
    browser: Any, live_server: LiveServer, artifacts: Path
) -> None:
    page = _page(browser, PHONE)
    _log_in(page, live_server, live_server.logins["employer"])
    placement_id, _ = FEES["declined"]
    _, clearing_before = _fee_row(live_server, placement_id)
    _pay(page, live_server, "declined", "4000000000000002")
    error = page.locator("#card-error")
    expect(error).to_have_text("银行卡被拒绝，请换一张卡或联系发卡银行")
    expect(page.get_by_role("button", name="付款")).to_be_enabled()
    _shot(page, artifacts, "fee-declined-phone")
    page.wait_for_timeout(2_000)  # longer than localstripe's webhook delay
    fee, clearing_after = _fee_row(live_server, placement_id)
    assert (fee.entry_id, fee.paid_at) == (None, None)
    assert fee.status in ("due", "processing")
    assert clearing_after == clearing_before  # nothing booked by the declined card
    expect(page.locator("#fee-status")).not_to_have_text("已付款")
