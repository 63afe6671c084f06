"""Market fees against localstripe (a Stripe-compatible server started on 127.0.0.1):
a placement's fee paid through a PaymentIntent, booked only on the signed webhook,
replayed ten times, out of order, with a bad signature; refunds we refuse beyond what
was paid (localstripe itself accepts them); Stripe's balance transactions against ours."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing import fees
from billing.ledger import service as ledger
from billing.stripe import StripeClient, sign
from marketplace.db import unit_of_work
from marketplace.dispatcher import drain
from marketplace.events import emit
from tests.billing import localstripe_server
from tests.billing.conftest import make_broker
from tests.billing.helpers import employer_of
from tests.conftest import YUZHONG
from web.settings import Settings, StripeSettings

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
ROOT = Path(__file__).resolve().parents[2]
SECRET = "whsec_laowu_test"
KEY = "sk_test_laowu"


@pytest.fixture(scope="module")
def localstripe() -> Iterator[str]:
    with localstripe_server.running() as url:
        yield url


@pytest.fixture
def settings(settings: Settings, localstripe: str) -> Settings:
    return dataclasses.replace(
        settings, stripe=StripeSettings(api_base=localstripe, api_key=KEY, webhook_secret=SECRET)
    )


class Inbox:
    """Receives localstripe's signed webhooks, as our server would."""

    def __init__(self) -> None:
        self.items: list[tuple[bytes, str]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.items.append((await request.read(), request.headers.get("Stripe-Signature", "")))
        return web.Response(text="ok")

    async def wait_for(self, kind: str, intent_id: str) -> tuple[bytes, str]:
        for _ in range(100):
            for body, header in self.items:
                if f'"{kind}"' in body.decode() and intent_id in body.decode():
                    return body, header
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {kind} webhook for {intent_id}")


async def test_fee_paid_booked_once_refunded_and_reconciled(
    app: Litestar,
    client: AsyncTestClient[Litestar],
    sessions: async_sessionmaker[AsyncSession],
    make_account: Any,
    login: Any,
    localstripe: str,
) -> None:
    inbox = Inbox()
    receiver = web.Application()
    receiver.router.add_post("/hook", inbox.handle)
    runner = web.AppRunner(receiver)
    await runner.setup()
    port = localstripe_server.free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    stripe = httpx.AsyncClient(base_url=localstripe, auth=(KEY, ""))
    try:
        await _journey(app, client, sessions, make_account, login, localstripe, stripe, inbox, port)
    finally:
        await stripe.aclose()
        await runner.cleanup()


async def _journey(
    app: Litestar,
    client: AsyncTestClient[Litestar],
    sessions: async_sessionmaker[AsyncSession],
    make_account: Any,
    login: Any,
    localstripe: str,
    stripe: httpx.AsyncClient,
    inbox: Inbox,
    port: int,
) -> None:
    started = datetime.now(UTC) - timedelta(minutes=1)
    r = await stripe.post(
        "/_config/webhooks/laowu", data={"url": f"http://127.0.0.1:{port}/hook", "secret": SECRET}
    )
    assert r.status_code == 200
    employer_account = await make_account("employer", YUZHONG)
    employer = await login(employer_account)
    stranger = await login(await make_account("employer", YUZHONG))
    finance = await login(await make_account("finance", "50"))
    broker = await make_broker(sessions)
    async with unit_of_work(sessions) as session:
        # The paying employer's organisation: the fee is its to pay, nobody else's.
        org = await employer_of(
            session, employer_account.id, name="渝中建工", credit_code="91500103MA5UFEE001"
        )
        await emit(
            session,
            "placement.confirmed",
            {
                "placement_id": 77, "job_id": 5, "organization_id": org.id, "broker_id": broker,
                "worker_id": 123, "starts_on": "2026-03-01", "wage_min_fen": 600_000,
                "wage_max_fen": 800_000, "wage_unit": "month", "fee_fixed_fen": None,
                "fee_share_bp": 500,
            },
        )  # fmt: skip
    await drain(sessions, app.state.registry)
    url = "/api/v1/placements/77/fee"
    assert (await client.post(url, headers=employer)).status_code == 422  # no Idempotency-Key
    other = await client.post(url, headers={**stranger, "Idempotency-Key": "pay-0"})
    assert other.status_code == 404  # another organisation's placement
    made = await client.post(url, headers={**employer, "Idempotency-Key": "pay-1"})
    assert made.status_code == 201, made.text
    fee = made.json()
    assert (fee["amount_fen"], fee["status"]) == (30_000, "processing")
    again = await client.post(url, headers={**employer, "Idempotency-Key": "pay-2"})
    assert again.json()["payment_intent_id"] == fee["payment_intent_id"]
    intent_id = fee["payment_intent_id"]
    sent = (await stripe.get(f"/v1/payment_intents/{intent_id}")).json()
    # Only our own ids leave the platform: no worker, no names.
    assert sent["metadata"] == {"placement_id": "77", "fee_id": "1"}
    assert "123" not in str(sent.get("description"))
    # Nothing is booked before Stripe says so.
    async with sessions() as session:
        assert await ledger.get_account(session, "market:stripe_clearing") is None
    # The employer pays (Stripe.js would confirm with the card).
    pm = (
        await stripe.post(
            "/v1/payment_methods",
            data={"type": "card", "card[number]": "4242424242424242", "card[exp_month]": "12",
                  "card[exp_year]": "2030", "card[cvc]": "123"},
        )
    ).json()  # fmt: skip
    attached = await stripe.post(
        f"/v1/payment_intents/{intent_id}", data={"payment_method": pm["id"]}
    )
    assert attached.status_code == 200, attached.text
    confirmed = await stripe.post(f"/v1/payment_intents/{intent_id}/confirm")
    assert confirmed.json()["status"] == "succeeded"
    body, header = await inbox.wait_for("payment_intent.succeeded", intent_id)
    outcomes = []
    for _ in range(10):
        response = await client.post(
            "/api/v1/webhooks/stripe",
            content=body,
            headers={"Stripe-Signature": header, "Content-Type": "application/json"},
        )
        assert response.status_code == 200, response.text
        outcomes.append(response.json()["outcome"])
    assert outcomes == ["booked"] + ["duplicate"] * 9
    forged = await client.post(
        "/api/v1/webhooks/stripe",
        content=body.replace(b"30000", b"99999"),
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
    )
    assert forged.status_code == 422
    assert forged.json()["field"] == "Stripe-Signature"
    # An older failure event arriving late does not reopen a paid fee.
    late = (
        b'{"id": "evt_late_1", "type": "payment_intent.payment_failed", "created": 1, '
        b'"data": {"object": {"id": "'
        + intent_id.encode()
        + b'", "metadata": {"placement_id": "77"}}}}'
    )
    response = await client.post(
        "/api/v1/webhooks/stripe",
        content=late,
        headers={"Stripe-Signature": sign(late, SECRET, int(time.time()))},
    )
    assert response.json()["outcome"] == "stale"
    async with sessions() as session:
        balances = {
            code: await ledger.current_balance(session, acc.id or 0)
            for code in (
                "market:stripe_clearing",
                "market:platform_revenue",
                f"market:broker:{broker}",
            )
            if (acc := await ledger.get_account(session, code)) is not None
        }
    assert balances == {
        "market:stripe_clearing": 30_000,
        "market:platform_revenue": 21_000,
        f"market:broker:{broker}": 9_000,
    }
    # Refunds: ours refuses more than what is left; localstripe would accept it.
    refund_url = "/api/v1/placements/77/fee/refund"
    part = await client.post(
        refund_url, json={"amount_fen": 10_000}, headers={**finance, "Idempotency-Key": "rf-1"}
    )
    assert part.status_code == 201, part.text
    assert part.json()["refunded_fen"] == 10_000
    too_much = await client.post(
        refund_url, json={"amount_fen": 20_001}, headers={**finance, "Idempotency-Key": "rf-2"}
    )
    assert too_much.status_code == 422
    assert too_much.json()["field"] == "amount_fen"
    by_employer = await client.post(
        refund_url, json={"amount_fen": 1}, headers={**employer, "Idempotency-Key": "rf-3"}
    )
    assert by_employer.status_code == 403
    direct = await stripe.post("/v1/refunds", data={"payment_intent": intent_id, "amount": "25000"})
    assert direct.status_code == 200  # localstripe over-refunds: 10,000 + 25,000 > 30,000
    async with sessions() as session:
        assert (
            await ledger.current_balance(
                session,
                (await ledger.get_account(session, "market:stripe_clearing")).id or 0,  # type: ignore[union-attr]
            )
            == 20_000
        )
        async with StripeClient(api_key=KEY, api_base=localstripe) as stripe_client:
            mismatches = await fees.market_mismatches(
                session,
                client=stripe_client,
                start=started,
                end=datetime.now(UTC) + timedelta(minutes=1),
            )
    # The only difference: the refund made behind our back, straight at Stripe.
    assert [(m.kind, m.reference, m.stripe_fen) for m in mismatches] == [
        ("missing_here", direct.json()["id"], -25_000)
    ]
    # The same list in the reconciliation report, for city-level finance.
    period = f"{datetime.now(UTC):%Y-%m}"
    report = (
        await client.get("/api/v1/reconciliation", params={"period": period}, headers=finance)
    ).json()
    assert [m["reference"] for m in report["market_mismatches"]] == [direct.json()["id"]]
    statement = (await client.get(f"/api/v1/brokers/{broker}/earnings", headers=finance)).json()
    assert statement["market_fen"] == 6_000  # 30 % of the 20,000 kept
    assert statement["market"][0]["placement_id"] == 77
