"""The employer's card payment over HTTP, against localstripe: the fee page's policy
lets only the configured Stripe.js in; the page's two steps (a SetupIntent for
Stripe.js, then the charge of the card Stripe.js set up) refuse another
organisation, another fee's card and a card the bank declines; the status the page
polls says paid only once the webhook has booked it. Stripe.js itself runs in
tests/browser/test_fee_payment.py; here its call is made as it makes it."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from billing.ledger import service as ledger
from billing.models import MarketFee
from billing.stripe import sign
from marketplace.db import unit_of_work
from tests.billing.helpers import employer_of
from tests.billing.localstripe_server import running
from tests.conftest import YUZHONG
from tests.web.test_pages import _csrf, page_login
from web.settings import Settings, StripeSettings

SECRET = "whsec_laowu_card"
KEY = "sk_test_laowu"
PUBLISHABLE = "pk_test_laowu"


@pytest.fixture(scope="module")
def localstripe() -> Iterator[str]:
    with running() as url:
        yield url


@pytest.fixture
def settings(settings: Settings, localstripe: str) -> Settings:
    return dataclasses.replace(
        settings,
        stripe=StripeSettings(
            api_base=localstripe,
            api_key=KEY,
            webhook_secret=SECRET,
            publishable_key=PUBLISHABLE,
            js_url=f"{localstripe}/js.stripe.com/v3/",
        ),
    )


@pytest.fixture
async def stripe(localstripe: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=localstripe) as client:
        yield client


async def _employer_with_fees(
    sessions: async_sessionmaker[AsyncSession], make_account: Any, *fees: tuple[int, int]
) -> Any:
    account = await make_account("employer", YUZHONG)
    async with unit_of_work(sessions) as session:
        org = await employer_of(
            session,
            account.id,
            name=f"渝中建工{fees[0][0]}",
            credit_code=f"91500103MA5C{fees[0][0]:06d}",
        )
        for placement_id, amount in fees:
            session.add(
                MarketFee(placement_id=placement_id, organization_id=org.id, amount_fen=amount)
            )
    return account


async def _step(client: Any, path: str, token: str, body: Any = None) -> httpx.Response:
    response: httpx.Response = await client.post(
        path, json=body if body is not None else {}, headers={"x-csrftoken": token}
    )
    return response


async def _stripe_js_sets_up(stripe: httpx.AsyncClient, secret: str, number: str) -> Any:
    """What Stripe.js's confirmCardSetup sends (localstripe's look-alike, verbatim):
    the card, with the publishable key, from the browser straight to Stripe."""
    setup_id = secret.split("_secret_")[0]
    return await stripe.post(
        f"/v1/setup_intents/{setup_id}/confirm",
        content=json.dumps(
            {
                "key": PUBLISHABLE,
                "use_stripe_sdk": True,
                "client_secret": secret,
                "payment_method_data": {
                    "type": "card",
                    "card": {"number": number, "exp_month": "12", "exp_year": "2030", "cvc": "123"},
                },
            }
        ),
    )


async def test_fee_page_policy_lets_in_only_the_configured_stripe_js(
    client: AsyncTestClient[Litestar],
    sessions: async_sessionmaker[AsyncSession],
    make_account: Any,
    localstripe: str,
) -> None:
    await page_login(client, await _employer_with_fees(sessions, make_account, (601, 30_000)))
    page = await client.get("/fees/601")
    assert page.status_code == 200
    assert f'<script src="{localstripe}/js.stripe.com/v3/" defer></script>' in page.text
    assert f'data-publishable-key="{PUBLISHABLE}"' in page.text
    policy = page.headers["Content-Security-Policy"]
    assert f"script-src 'self' {localstripe};" in policy
    assert f"frame-src {localstripe};" in policy
    assert policy.endswith(f"connect-src 'self' {localstripe}")
    assert "frame-ancestors 'none'" in policy
    home = await client.get("/")
    assert localstripe not in home.headers["Content-Security-Policy"]
    assert "script-src 'self';" in home.headers["Content-Security-Policy"]


async def test_without_stripe_keys_the_page_says_so_and_loads_no_script(
    app: Litestar,
    client: AsyncTestClient[Litestar],
    sessions: async_sessionmaker[AsyncSession],
    make_account: Any,
) -> None:
    await page_login(client, await _employer_with_fees(sessions, make_account, (602, 30_000)))
    settings = app.state.settings
    app.state.settings = dataclasses.replace(
        settings, stripe=dataclasses.replace(settings.stripe, publishable_key=None)
    )
    try:
        page = await client.get("/fees/602")
    finally:
        app.state.settings = settings
    assert "在线付款尚未开通" in page.text
    assert "fee_payment.js" not in page.text
    assert 'id="card-form"' not in page.text


async def test_card_payment_steps_and_their_refusals(
    client: AsyncTestClient[Litestar],
    sessions: async_sessionmaker[AsyncSession],
    make_account: Any,
    stripe: httpx.AsyncClient,
) -> None:
    stranger = await _employer_with_fees(sessions, make_account, (699, 1_000))
    employer = await _employer_with_fees(sessions, make_account, (603, 30_000), (604, 20_000))
    # Another organisation's employer cannot start paying this fee.
    await page_login(client, stranger)
    token = await _csrf(client, "/fees/699")
    refused = await _step(client, "/fees/603/card", token)
    assert refused.status_code == 404
    assert refused.json()["field"] == "placement_id"

    await page_login(client, employer)
    token = await _csrf(client, "/fees/603")
    no_csrf = await client.post("/fees/603/card", json={})
    assert no_csrf.status_code == 403
    started = await _step(client, "/fees/603/card", token)
    assert started.status_code == 200, started.text
    secret = started.json()["setup_client_secret"]
    # The browser gives Stripe the card; a declined one stops there, at Stripe.
    declined = await _stripe_js_sets_up(stripe, secret, "4000000000000002")
    assert declined.status_code == 402
    assert declined.json()["error"]["code"] == "card_declined"
    secret = (await _step(client, "/fees/603/card", token)).json()["setup_client_secret"]
    checked = await _stripe_js_sets_up(stripe, secret, "4242424242424242")
    assert checked.json()["status"] == "succeeded", checked.text
    setup_id = checked.json()["id"]
    # Our server gets only Stripe's id, and checks with Stripe that it is this fee's.
    wrong_fee = await _step(client, "/fees/604/card/charge", token, {"setup_intent_id": setup_id})
    assert wrong_fee.status_code == 422
    assert wrong_fee.json() == {
        "detail": "这次银行卡验证不属于这笔服务费",
        "field": "setup_intent_id",
    }
    bogus = await _step(client, "/fees/603/card/charge", token, {"setup_intent_id": "x"})
    assert bogus.json()["field"] == "setup_intent_id"
    charged = await _step(client, "/fees/603/card/charge", token, {"setup_intent_id": setup_id})
    assert charged.status_code == 200, charged.text
    assert charged.json() == {"status": "succeeded", "payment_client_secret": None}
    # Charged at Stripe, but not paid here until the webhook says so.
    status = (await client.get("/fees/603/status")).json()
    assert (status["status"], status["label"], status["booked"]) == (
        "processing",
        "等待银行卡付款确认",
        False,
    )
    async with sessions() as session:
        assert await ledger.get_account(session, "market:stripe_clearing") is None
        fee = (
            await session.execute(select(MarketFee).where(col(MarketFee.placement_id) == 603))
        ).scalar_one()
    intent = (
        await stripe.get(f"/v1/payment_intents/{fee.payment_intent_id}", auth=(KEY, ""))
    ).json()
    assert intent["payment_method"].startswith("pm_")
    body = json.dumps(
        {"id": "evt_card_603", "type": "payment_intent.succeeded", "data": {"object": intent}}
    ).encode()
    hook = await client.post(
        "/api/v1/webhooks/stripe",
        content=body,
        headers={"Stripe-Signature": sign(body, SECRET, int(time.time()))},
    )
    assert hook.json()["outcome"] == "booked"
    status = (await client.get("/fees/603/status")).json()
    assert (status["status"], status["label"], status["booked"]) == ("succeeded", "已付款", True)
    again = await _step(client, "/fees/603/card", token)
    assert again.status_code == 409  # paid: no second payment

    # A card the bank declines when charged (it passed the check): refused in Chinese,
    # the fee still due, nothing booked.
    secret = (await _step(client, "/fees/604/card", token)).json()["setup_client_secret"]
    checked = await _stripe_js_sets_up(stripe, secret, "4000000000000341")
    assert checked.json()["status"] == "succeeded"
    refused = await _step(
        client, "/fees/604/card/charge", token, {"setup_intent_id": checked.json()["id"]}
    )
    assert refused.status_code == 422
    assert refused.json() == {
        "detail": "银行卡扣款被拒绝，请换一张卡或联系发卡银行",
        "field": "card",
    }
    status = (await client.get("/fees/604/status")).json()
    assert (status["status"], status["booked"]) == ("due", False)
