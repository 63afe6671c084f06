"""The reconciliation exports carry the market side: payments and refunds made at
localstripe (a Stripe-compatible server started on 127.0.0.1), booked by us or not,
against Stripe's balance transactions. The CSV (two titled sections, UTF-8 with BOM)
and the XLSX (a second sheet) are opened as a finance clerk would open them."""

from __future__ import annotations

import csv
import dataclasses
import io
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from openpyxl import load_workbook
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing import fee_webhooks, fees, reconciliation
from billing.stripe import StripeClient
from marketplace.access import SYSTEM
from marketplace.clock import SHANGHAI
from marketplace.db import unit_of_work
from marketplace.events import OutboxEvent, emit
from tests.billing import localstripe_server
from tests.billing.helpers import CONFIG
from tests.conftest import YUZHONG
from web.settings import Settings, StripeSettings

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk_test_laowu"


@pytest.fixture
def localstripe() -> Iterator[str]:
    """A fresh localstripe per test: its balance transactions are this test's only."""
    with localstripe_server.running() as url:
        yield url


@pytest.fixture
async def stripe(localstripe: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=localstripe, auth=(KEY, "")) as client:
        yield client


@pytest.fixture
def settings(settings: Settings, localstripe: str) -> Settings:
    return dataclasses.replace(
        settings, stripe=StripeSettings(api_base=localstripe, api_key=KEY, webhook_secret="x")
    )


async def _pay(stripe: httpx.AsyncClient, amount: int, placement_id: int) -> dict[str, Any]:
    """An employer pays at Stripe: a PaymentIntent confirmed with a test card."""
    intent = (
        await stripe.post(
            "/v1/payment_intents",
            data={"amount": str(amount), "currency": "cny", "payment_method_types[0]": "card",
                  "metadata[placement_id]": str(placement_id)},
        )
    ).json()  # fmt: skip
    card = (
        await stripe.post(
            "/v1/payment_methods",
            data={"type": "card", "card[number]": "4242424242424242", "card[exp_month]": "12",
                  "card[exp_year]": "2030", "card[cvc]": "123"},
        )
    ).json()  # fmt: skip
    await stripe.post(f"/v1/payment_intents/{intent['id']}", data={"payment_method": card["id"]})
    confirmed = (await stripe.post(f"/v1/payment_intents/{intent['id']}/confirm")).json()
    assert confirmed["status"] == "succeeded", confirmed
    return dict(confirmed)


def _charge(intent: dict[str, Any]) -> str:
    charge = intent["latest_charge"]
    return str(charge["id"] if isinstance(charge, dict) else charge)


async def _fee_due(session: AsyncSession, placement_id: int, amount: int) -> None:
    event = await emit(
        session,
        "placement.confirmed",
        {"placement_id": placement_id, "job_id": None, "organization_id": None,
         "broker_id": None, "fee_fixed_fen": amount},
    )  # fmt: skip
    stored = await session.get(OutboxEvent, event.id)
    assert stored is not None
    await fees.on_placement_confirmed(session, stored)


async def _book(session: AsyncSession, intent: dict[str, Any]) -> None:
    """What the signed ``payment_intent.succeeded`` webhook does."""
    outcome = await fee_webhooks.handle_event(
        session,
        event={"id": f"evt_{intent['id']}", "type": "payment_intent.succeeded",
               "created": int(time.time()), "data": {"object": intent}},
        config=CONFIG,
    )  # fmt: skip
    assert outcome == "booked"


async def _year_of_market(
    factory: async_sessionmaker[AsyncSession], stripe: httpx.AsyncClient, api_base: str
) -> dict[str, str]:
    """Six Stripe movements, four kinds of outcome; returns their references."""
    refs: dict[str, str] = {}
    async with unit_of_work(factory) as session:
        for placement, amount in ((501, 30_000), (502, 12_345), (504, 7_000)):
            await _fee_due(session, placement, amount)
    paid = await _pay(stripe, 30_000, 501)
    refs["paid"] = _charge(paid)
    differs = await _pay(stripe, 12_345, 502)
    refs["differs"] = _charge(differs)
    stranger = await _pay(stripe, 8_800, 503)  # no fee of ours: never booked
    refs["stranger"] = _charge(stranger)
    async with unit_of_work(factory) as session:
        await _book(session, paid)
        # Booked short of what Stripe received (a faulty booking to be caught).
        await _book(session, {**differs, "amount_received": 12_000, "amount": 12_000})
        # A booking whose charge Stripe never had.
        await _book(
            session,
            {"id": "pi_not_at_stripe", "amount": 7_000, "amount_received": 7_000,
             "latest_charge": "ch_not_at_stripe", "metadata": {"placement_id": "504"}},
        )  # fmt: skip
    async with (
        unit_of_work(factory) as session,
        StripeClient(api_key=KEY, api_base=api_base) as client,
    ):
        fee = await fees.refund(
            session, actor=SYSTEM, client=client, placement_id=501,
            data=fees.RefundIn(amount_fen=10_000), key="rf-1",
        )  # fmt: skip
        assert fee.refunded_fen == 10_000
    refunds = (await stripe.get("/v1/refunds", params={"limit": 10})).json()["data"]
    refs["refund"] = refunds[0]["id"]
    direct = await stripe.post(
        "/v1/refunds", data={"payment_intent": paid["id"], "amount": "5000"}
    )  # behind our back, straight at Stripe
    refs["direct"] = direct.json()["id"]
    return refs


def _expected(refs: dict[str, str]) -> dict[str, list[object]]:
    """By reference: type, placement, ours, Stripe's, difference, result."""
    return {
        refs["paid"]: ["服务费收款", 501, 30_000, 30_000, 0, "一致"],
        refs["refund"]: ["退款", 501, -10_000, -10_000, 0, "一致"],
        refs["differs"]: ["服务费收款", 502, 12_000, 12_345, -345, "金额不一致"],
        "ch_not_at_stripe": ["服务费收款", 504, 7_000, None, 7_000, "Stripe 无记录"],
        refs["stranger"]: ["服务费收款", None, None, 8_800, -8_800, "本平台无记录"],
        refs["direct"]: ["退款", None, None, -5_000, 5_000, "本平台无记录"],
    }


def _period() -> str:
    return f"{datetime.now(UTC).astimezone(SHANGHAI):%Y-%m}"


def _csv_market(content: bytes) -> tuple[list[list[str]], list[list[str]]]:
    """The CSV as a spreadsheet shows it: (subsidy section, market section)."""
    assert content.startswith("\ufeff".encode()), "UTF-8 BOM, so Excel and WPS read Chinese"
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    split = next(i for i, r in enumerate(rows) if r and r[0] == reconciliation.MARKET_TITLE)
    return rows[:split], rows[split:]


def _by_reference(rows: list[list[Any]]) -> dict[str, list[object]]:
    def number(value: Any) -> object:
        if value in ("", None):
            return None
        return int(value) if isinstance(value, str) and value.lstrip("-").isdigit() else value

    return {str(r[1]): [number(r[0]), number(r[2]), *[number(v) for v in r[3:7]]] for r in rows}


async def test_exports_carry_every_stripe_movement_against_stripes_record(
    factory: async_sessionmaker[AsyncSession], stripe: httpx.AsyncClient, localstripe: str
) -> None:
    refs = await _year_of_market(factory, stripe, localstripe)
    async with factory() as session, StripeClient(api_key=KEY, api_base=localstripe) as client:
        rep = await reconciliation.report(session, actor=SYSTEM, period=_period())
        market = await reconciliation.market_side(
            session, client=client, start=rep.start, end=rep.end
        )
    expected = _expected(refs)
    subsidy, section = _csv_market(reconciliation.to_csv(rep, market))
    assert subsidy[0][0] == reconciliation.SUBSIDY_TITLE
    assert subsidy[1][2] == "期初余额(分)"
    assert section[1] == [label for _, label in reconciliation.MARKET_COLUMNS]
    body, total = section[2:-1], section[-1]
    assert _by_reference(body) == expected
    # Mismatches first, so the clerk sees what needs work at the top.
    assert [r[6] for r in body][-2:] == ["一致", "一致"]
    ours = 30_000 - 10_000 + 12_000 + 7_000
    theirs = 30_000 - 10_000 + 12_345 + 8_800 - 5_000
    assert total == ["合计", "", "", str(ours), str(theirs), str(ours - theirs), "4 笔不一致"]
    book = load_workbook(io.BytesIO(reconciliation.to_xlsx(rep, market)))
    assert book.sheetnames == [f"补贴对账 {_period()}", f"市场服务费 {_period()}"]
    sheet = book[f"市场服务费 {_period()}"]
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert rows[0] == [label for _, label in reconciliation.MARKET_COLUMNS]
    assert _by_reference(rows[1:-1]) == expected
    assert rows[-1][3:6] == [ours, theirs, ours - theirs]
    # The JSON report's mismatch list says the same.
    assert {m["reference"]: m["kind"] for m in market.mismatch_list()} == {
        refs["differs"]: "amount_differs",
        "ch_not_at_stripe": "missing_in_stripe",
        refs["stranger"]: "missing_here",
        refs["direct"]: "missing_here",
    }


async def test_the_api_exports_both_sides_for_city_finance_only(
    client: AsyncTestClient[Litestar],
    sessions: async_sessionmaker[AsyncSession],
    make_account: Any,
    login: Any,
    stripe: httpx.AsyncClient,
    localstripe: str,
) -> None:
    refs = await _year_of_market(sessions, stripe, localstripe)
    city = await login(await make_account("finance", "50"))
    district = await login(await make_account("finance", YUZHONG))
    url = "/api/v1/reconciliation"
    xlsx = await client.get(url, params={"period": _period(), "format": "xlsx"}, headers=city)
    assert xlsx.status_code == 200, xlsx.text
    sheet = load_workbook(io.BytesIO(xlsx.content))[f"市场服务费 {_period()}"]
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert _by_reference(rows[1:-1]) == _expected(refs)
    body = await client.get(url, params={"period": _period(), "format": "csv"}, headers=city)
    assert body.headers["content-type"].startswith("text/csv")
    _, section = _csv_market(body.content)
    assert _by_reference(section[2:-1]) == _expected(refs)
    # A district's finance sees its pools, and is told why the market side is absent.
    mine = await client.get(url, params={"period": _period(), "format": "csv"}, headers=district)
    assert mine.status_code == 200
    _, section = _csv_market(mine.content)
    assert section[1] == [reconciliation.MARKET_ABSENT]
    own = await client.get(url, params={"period": _period(), "format": "xlsx"}, headers=district)
    absent = load_workbook(io.BytesIO(own.content))[f"市场服务费 {_period()}"]
    assert absent.cell(1, 1).value == reconciliation.MARKET_ABSENT
