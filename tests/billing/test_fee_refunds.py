"""Refunds made outside the platform (Stripe's dashboard, here localstripe's refund API
called directly) reach the market ledger through Stripe's webhooks: booked once per
Stripe refund id however often and in whatever order the events come, never beyond
what was paid, split between the platform and the broker without losing a fen.

localstripe sends no refund events of its own (only payment_intent.* ones), so these
tests deliver Stripe's refund events built around localstripe's real objects: the
refund as ``GET /v1/refunds/{id}`` returns it, the charge as ``GET /v1/charges/{id}``."""

from __future__ import annotations

import dataclasses
import json
import random
import time
from collections.abc import AsyncIterator, Iterator
from itertools import count
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from billing.fees import _broker_part, _refund_split
from billing.ledger import service as ledger
from billing.models import MarketFee
from billing.stripe import sign
from marketplace.audit.models import AuditEntry
from marketplace.db import unit_of_work
from marketplace.dispatcher import drain
from marketplace.events import emit
from tests.billing.conftest import make_broker
from tests.billing.helpers import employer_of
from tests.billing.localstripe_server import running
from tests.conftest import YUZHONG
from web.settings import Settings, StripeSettings

SECRET = "whsec_laowu_refunds"
KEY = "sk_test_laowu"
FEE = 30_000  # 5 % of a 600,000 fen month; the broker's part is 30 % of it: 9,000
EVENT_IDS = count(1)


@pytest.fixture(scope="module")
def localstripe() -> Iterator[str]:
    with running() as url:
        yield url


@pytest.fixture
def settings(settings: Settings, localstripe: str) -> Settings:
    return dataclasses.replace(
        settings, stripe=StripeSettings(api_base=localstripe, api_key=KEY, webhook_secret=SECRET)
    )


@pytest.fixture
async def stripe(localstripe: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=localstripe, auth=(KEY, "")) as client:
        yield client


@dataclasses.dataclass
class Paid:
    placement_id: int
    broker_id: int
    intent: dict[str, Any]  # as localstripe returns it after the card was charged
    finance: dict[str, str]

    @property
    def intent_id(self) -> str:
        return str(self.intent["id"])

    @property
    def charge_id(self) -> str:
        charge = self.intent["latest_charge"]
        return str(charge["id"] if isinstance(charge, dict) else charge)


async def _paid_fee(
    app: Litestar,
    client: AsyncTestClient[Litestar],
    sessions: async_sessionmaker[AsyncSession],
    make_account: Any,
    login: Any,
    stripe: httpx.AsyncClient,
    placement_id: int,
) -> Paid:
    """A fee of 30,000 fen the employer paid at Stripe; its success event not yet sent."""
    employer_account = await make_account("employer", YUZHONG)
    employer = await login(employer_account)
    finance = await login(await make_account("finance", "50"))
    broker = await make_broker(sessions)
    async with unit_of_work(sessions) as session:
        org = await employer_of(
            session,
            employer_account.id,
            name=f"渝中建工{placement_id}",
            credit_code=f"91500103MA5U{placement_id:06d}",
        )
        await emit(
            session,
            "placement.confirmed",
            {
                "placement_id": placement_id, "job_id": 5, "organization_id": org.id,
                "broker_id": broker, "worker_id": 123, "starts_on": "2026-03-01",
                "wage_min_fen": 600_000, "wage_max_fen": 800_000, "wage_unit": "month",
                "fee_fixed_fen": None, "fee_share_bp": 500,
            },
        )  # fmt: skip
    await drain(sessions, app.state.registry)
    made = await client.post(
        f"/api/v1/placements/{placement_id}/fee",
        headers={**employer, "Idempotency-Key": f"pay-{placement_id}"},
    )
    assert made.status_code == 201, made.text
    intent_id = made.json()["payment_intent_id"]
    card = {"card[number]": "4242424242424242", "card[exp_month]": "12"}
    card |= {"card[exp_year]": "2030", "card[cvc]": "123"}
    method = (await stripe.post("/v1/payment_methods", data={"type": "card", **card})).json()
    await stripe.post(f"/v1/payment_intents/{intent_id}", data={"payment_method": method["id"]})
    confirmed = (await stripe.post(f"/v1/payment_intents/{intent_id}/confirm")).json()
    assert confirmed["status"] == "succeeded"
    return Paid(placement_id, broker, confirmed, finance)


async def _deliver(
    client: AsyncTestClient[Litestar], kind: str, obj: dict[str, Any], event_id: str | None = None
) -> httpx.Response:
    body = json.dumps(
        {
            "id": event_id or f"evt_refund_test_{next(EVENT_IDS)}",
            "object": "event",
            "type": kind,
            "created": int(time.time()),
            "data": {"object": obj},
        }
    ).encode()
    return await client.post(
        "/api/v1/webhooks/stripe",
        content=body,
        headers={
            "Stripe-Signature": sign(body, SECRET, int(time.time())),
            "Content-Type": "application/json",
        },
    )


async def _outcome(client: AsyncTestClient[Litestar], kind: str, obj: dict[str, Any]) -> str:
    response = await _deliver(client, kind, obj)
    assert response.status_code == 200, response.text
    return str(response.json()["outcome"])


async def _balances(sessions: async_sessionmaker[AsyncSession], broker: int) -> dict[str, int]:
    async with sessions() as session:
        found = {}
        for name, code in (
            ("clearing", "market:stripe_clearing"),
            ("platform", "market:platform_revenue"),
            ("broker", f"market:broker:{broker}"),
        ):
            account = await ledger.get_account(session, code)
            found[name] = await ledger.current_balance(session, account.id or 0) if account else 0
        return found


async def _fee(sessions: async_sessionmaker[AsyncSession], placement_id: int) -> MarketFee:
    async with sessions() as session:
        return (
            await session.execute(
                select(MarketFee).where(MarketFee.placement_id == placement_id)  # type: ignore[arg-type]
            )
        ).scalar_one()


async def test_outside_refunds_are_booked_once_split_and_never_beyond_what_was_paid(
    app: Litestar,
    client: AsyncTestClient[Litestar],
    sessions: async_sessionmaker[AsyncSession],
    make_account: Any,
    login: Any,
    stripe: httpx.AsyncClient,
) -> None:
    paid = await _paid_fee(app, client, sessions, make_account, login, stripe, 501)
    assert await _outcome(client, "payment_intent.succeeded", paid.intent) == "booked"
    assert await _balances(sessions, paid.broker_id) == {
        "clearing": 30_000,
        "platform": 21_000,
        "broker": 9_000,
    }
    # Someone refunds 10,001 fen in Stripe's dashboard, not on the platform.
    first = await stripe.post(
        "/v1/refunds", data={"payment_intent": paid.intent_id, "amount": "10001"}
    )
    assert first.status_code == 200, first.text
    events = (await stripe.get("/v1/events", params={"limit": 100})).json()["data"]
    assert not [e for e in events if "refund" in e["type"]]  # localstripe sent none itself
    charge = (await stripe.get(f"/v1/charges/{paid.charge_id}")).json()
    # Stripe redelivers: the same event ten times is booked once.
    event = f"evt_charge_refunded_{paid.placement_id}"
    outcomes = []
    for _ in range(10):
        response = await _deliver(client, "charge.refunded", charge, event_id=event)
        assert response.status_code == 200, response.text
        outcomes.append(response.json()["outcome"])
    assert outcomes == ["refund_booked"] + ["duplicate"] * 9
    # The same refund told again by another event type books nothing more either.
    refund = (await stripe.get(f"/v1/refunds/{first.json()['id']}")).json()
    for kind in ("refund.created", "charge.refund.updated", "refund.updated"):
        assert await _outcome(client, kind, refund) == "refund_nothing_new"
    # Broker part reversed: ⌊30,000·30 %⌋ − ⌊19,999·30 %⌋ = 9,000 − 5,999 = 3,001.
    assert await _balances(sessions, paid.broker_id) == {
        "clearing": 19_999,
        "platform": 14_000,
        "broker": 5_999,
    }
    fee = await _fee(sessions, paid.placement_id)
    assert (fee.refunded_fen, fee.status) == (10_001, "succeeded")
    # The rest, refunded straight at the charge: the reversals add up to exactly what
    # each side was credited, not a fen more or less.
    rest = await stripe.post("/v1/refunds", data={"charge": paid.charge_id, "amount": "19999"})
    assert rest.status_code == 200
    charge = (await stripe.get(f"/v1/charges/{paid.charge_id}")).json()
    assert await _outcome(client, "charge.refunded", charge) == "refund_booked"
    assert await _balances(sessions, paid.broker_id) == {"clearing": 0, "platform": 0, "broker": 0}
    # localstripe accepts refunding more than was paid; we book none of it, and say so.
    over = await stripe.post("/v1/refunds", data={"charge": paid.charge_id, "amount": "5000"})
    assert over.status_code == 200  # 10,001 + 19,999 + 5,000 > 30,000 at localstripe
    charge = (await stripe.get(f"/v1/charges/{paid.charge_id}")).json()
    assert charge["amount_refunded"] == 35_000
    assert await _outcome(client, "charge.refunded", charge) == "refund_nothing_new"
    refund = (await stripe.get(f"/v1/refunds/{over.json()['id']}")).json()
    assert await _outcome(client, "refund.created", refund) == "refund_nothing_new"
    assert await _balances(sessions, paid.broker_id) == {"clearing": 0, "platform": 0, "broker": 0}
    fee = await _fee(sessions, paid.placement_id)
    assert (fee.refunded_fen, fee.status) == (30_000, "refunded")
    async with sessions() as session:
        flagged = (
            (
                await session.execute(
                    select(AuditEntry).where(AuditEntry.action == "fee.refund_excess")  # type: ignore[arg-type]
                )
            )
            .scalars()
            .all()
        )
    assert {(e.detail or {}).get("refund_id") for e in flagged} == {over.json()["id"]}


async def test_a_refund_event_before_the_payment_event_books_both_once(
    app: Litestar,
    client: AsyncTestClient[Litestar],
    sessions: async_sessionmaker[AsyncSession],
    make_account: Any,
    login: Any,
    stripe: httpx.AsyncClient,
) -> None:
    paid = await _paid_fee(app, client, sessions, make_account, login, stripe, 502)
    made = await stripe.post("/v1/refunds", data={"charge": paid.charge_id, "amount": "3000"})
    refund = (await stripe.get(f"/v1/refunds/{made.json()['id']}")).json()
    assert refund["payment_intent"] is None  # made on the charge: only the charge is named
    # The refund's event comes first: the charge names the payment, which is fetched
    # from Stripe and booked first.
    assert await _outcome(client, "refund.created", refund) == "refund_booked"
    assert await _outcome(client, "payment_intent.succeeded", paid.intent) == "already_booked"
    assert await _balances(sessions, paid.broker_id) == {
        "clearing": 27_000,
        "platform": 18_900,
        "broker": 8_100,
    }
    fee = await _fee(sessions, paid.placement_id)
    assert (fee.status, fee.amount_fen, fee.refunded_fen) == ("succeeded", 30_000, 3_000)


async def test_a_refund_event_ahead_of_a_payment_stripe_cannot_confirm_is_refused_until_redelivered(
    app: Litestar,
    client: AsyncTestClient[Litestar],
    sessions: async_sessionmaker[AsyncSession],
    make_account: Any,
    login: Any,
    stripe: httpx.AsyncClient,
) -> None:
    paid = await _paid_fee(app, client, sessions, make_account, login, stripe, 503)
    made = await stripe.post(
        "/v1/refunds", data={"payment_intent": paid.intent_id, "amount": "1000"}
    )
    refund = (await stripe.get(f"/v1/refunds/{made.json()['id']}")).json()
    # Its event arrives first, and Stripe cannot be asked for the payment (no key
    # here): the event is refused (409) and not recorded, so that Stripe's redelivery
    # is processed in full once it can be.
    event_id = "evt_refund_early_503"
    original = app.state.settings
    app.state.settings = dataclasses.replace(
        original, stripe=dataclasses.replace(original.stripe, api_key=None)
    )  # no key: the payment cannot be fetched
    try:
        refused = await _deliver(client, "refund.created", refund, event_id=event_id)
    finally:
        app.state.settings = original
    assert refused.status_code == 409, refused.text
    assert refused.json()["field"] == "payment_intent"
    assert await _balances(sessions, paid.broker_id) == {"clearing": 0, "platform": 0, "broker": 0}
    again = await _deliver(client, "refund.created", refund, event_id=event_id)
    assert again.json()["outcome"] == "refund_booked"
    fee = await _fee(sessions, paid.placement_id)
    assert (fee.status, fee.refunded_fen) == ("succeeded", 1_000)


async def test_a_platform_refund_and_then_its_webhook_book_once(
    app: Litestar,
    client: AsyncTestClient[Litestar],
    sessions: async_sessionmaker[AsyncSession],
    make_account: Any,
    login: Any,
    stripe: httpx.AsyncClient,
) -> None:
    paid = await _paid_fee(app, client, sessions, make_account, login, stripe, 504)
    assert await _outcome(client, "payment_intent.succeeded", paid.intent) == "booked"
    made = await client.post(
        f"/api/v1/placements/{paid.placement_id}/fee/refund",
        json={"amount_fen": 10_000},
        headers={**paid.finance, "Idempotency-Key": "rf-504"},
    )
    assert made.status_code == 201, made.text
    refunds = (await stripe.get("/v1/refunds", params={"payment_intent": paid.intent_id})).json()[
        "data"
    ]
    assert len(refunds) == 1
    charge = (await stripe.get(f"/v1/charges/{paid.charge_id}")).json()
    for _ in range(3):
        assert await _outcome(client, "refund.created", refunds[0]) == "refund_nothing_new"
        assert await _outcome(client, "charge.refunded", charge) == "refund_nothing_new"
    assert await _balances(sessions, paid.broker_id) == {
        "clearing": 20_000,
        "platform": 14_000,
        "broker": 6_000,
    }
    assert (await _fee(sessions, paid.placement_id)).refunded_fen == 10_000
    # Stripe later says that refund failed: not booked again, not silently undone either.
    failed = {**refunds[0], "status": "failed"}
    assert await _outcome(client, "charge.refund.updated", failed) == "refund_nothing_new"
    async with sessions() as session:
        flagged = (
            await session.execute(
                select(AuditEntry).where(col(AuditEntry.action) == "fee.refund_failed")
            )
        ).scalar_one()
    assert flagged.detail == {"refund_id": refunds[0]["id"]}
    assert (await _balances(sessions, paid.broker_id))["clearing"] == 20_000


def test_partial_refunds_split_without_losing_a_fen() -> None:
    rng = random.Random(20261127)
    for _ in range(2_000):
        amount = rng.randint(1, 10**7)
        bp = rng.choice([0, 1, 2_500, 3_000, 3_333, 9_999, 10_000])
        left, platform_total, broker_total = amount, 0, 0
        while left:
            piece = rng.randint(1, left)
            platform, broker = _refund_split(left, piece, bp)
            assert min(platform, broker) >= 0
            assert platform + broker == piece
            platform_total, broker_total, left = (
                platform_total + platform,
                broker_total + broker,
                left - piece,
            )
        # Fully refunded: each side gave back exactly what it was credited.
        assert broker_total == _broker_part(amount, bp)
        assert platform_total == amount - _broker_part(amount, bp)
