"""The Stripe client (form encoding, idempotency keys, retries, timeouts) through a
transport that fails on purpose, and webhook signatures."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qsl

import httpx
import pytest

from billing.fees import fee_amount, first_month_wage
from billing.stripe import (
    RetryPolicy,
    SignatureError,
    StripeClient,
    StripeError,
    encode_form,
    sign,
    verify,
)


def test_nested_parameters_are_form_encoded_the_stripe_way() -> None:
    assert encode_form(
        {
            "amount": 500,
            "confirm": True,
            "metadata": {"placement_id": 3, "note": None},
            "payment_method_types": ["card"],
            "items": [{"price": "p1", "qty": 2}],
        }
    ) == [
        ("amount", "500"),
        ("confirm", "true"),
        ("metadata[placement_id]", "3"),
        ("payment_method_types[0]", "card"),
        ("items[0][price]", "p1"),
        ("items[0][qty]", "2"),
    ]


class Script:
    """A transport answering from a script: an exception to raise or a response."""

    def __init__(self, *steps: object) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0)
        if isinstance(step, Exception):
            raise step
        assert isinstance(step, httpx.Response)
        return step


def _client(script: Script, retries: int = 3) -> tuple[StripeClient, list[float]]:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    client = StripeClient(
        api_key="sk_test_x",
        api_base="https://stripe.test",
        transport=httpx.MockTransport(script),
        retry=RetryPolicy(max_retries=retries, base_delay=0.5, max_delay=8),
        sleep=sleep,
    )
    return client, slept


OK = httpx.Response(200, json={"id": "pi_1", "object": "payment_intent"})


async def test_retries_connection_errors_timeouts_409_429_and_5xx_with_one_key() -> None:
    script = Script(
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.Response(429, json={"error": {"message": "rate"}}),
        httpx.Response(409, json={"error": {"message": "lock"}}),
        httpx.Response(503, json={"error": {"message": "down"}}),
        OK,
    )
    client, slept = _client(script, retries=5)
    async with client:
        result = await client.create_payment_intent(
            {"amount": 500, "metadata": {"placement_id": 3}}, idempotency_key="laowu-1"
        )
    assert result["id"] == "pi_1"
    assert len(script.requests) == 6
    assert {r.headers["Idempotency-Key"] for r in script.requests} == {"laowu-1"}
    assert dict(parse_qsl(script.requests[-1].content.decode())) == {
        "amount": "500",
        "metadata[placement_id]": "3",
    }
    # Jittered exponential backoff: each wait within [half, all] of its step.
    for attempt, seconds in enumerate(slept):
        step = min(8, 0.5 * 2**attempt)
        assert step / 2 <= seconds <= step


async def test_stripe_should_retry_header_wins_and_client_errors_are_final() -> None:
    script = Script(
        httpx.Response(
            500, headers={"Stripe-Should-Retry": "false"}, json={"error": {"message": "no"}}
        )
    )
    client, _ = _client(script)
    async with client:
        with pytest.raises(StripeError) as caught:
            await client.create_refund("pi_1", 100, idempotency_key="r")
    assert caught.value.status == 500
    assert len(script.requests) == 1
    script = Script(
        httpx.Response(
            400, headers={"Stripe-Should-Retry": "true"}, json={"error": {"message": "x"}}
        ),
        OK,
    )
    client, _ = _client(script)
    async with client:
        await client.create_refund("pi_1", 100, idempotency_key="r")
    assert len(script.requests) == 2
    script = Script(
        httpx.Response(400, json={"error": {"message": "bad", "code": "parameter_missing"}})
    )
    client, _ = _client(script)
    async with client:
        with pytest.raises(StripeError) as caught:
            await client.create_refund("pi_1", 100, idempotency_key="r")
    assert (caught.value.status, caught.value.code) == (400, "parameter_missing")


async def test_gives_up_after_the_last_retry_and_every_post_has_a_key() -> None:
    script = Script(*(httpx.ConnectError("refused") for _ in range(3)))
    client, slept = _client(script, retries=2)
    async with client:
        with pytest.raises(StripeError, match="无法连接"):
            await client.request("POST", "/v1/refunds", {"amount": 1})
    assert len(script.requests) == 3
    assert len(slept) == 2
    key = script.requests[0].headers["Idempotency-Key"]
    assert key
    assert all(r.headers["Idempotency-Key"] == key for r in script.requests)


def test_webhook_signatures() -> None:
    payload = json.dumps({"id": "evt_1", "type": "payment_intent.succeeded"}).encode()
    now = int(time.time())
    header = sign(payload, "whsec_1", now)
    assert verify(payload, header, "whsec_1")["id"] == "evt_1"
    # A second v1 (secret rotation) is accepted too.
    assert verify(payload, f"{header},v1={'0' * 64}", "whsec_1")["id"] == "evt_1"
    for bad_header, secret, body in (
        (header, "whsec_other", payload),
        (header, "whsec_1", payload + b" "),
        (sign(payload, "whsec_1", now - 301), "whsec_1", payload),
        ("t=abc,v1=00", "whsec_1", payload),
        (None, "whsec_1", payload),
    ):
        with pytest.raises(SignatureError):
            verify(body, bad_header, "whsec_1" if secret == "whsec_1" else secret)
    assert verify(payload, sign(payload, "whsec_1", now - 299), "whsec_1")


def test_fee_amount_from_the_placement() -> None:
    base = {"wage_min_fen": 500_000, "wage_max_fen": 700_000, "wage_unit": "month"}
    assert fee_amount({**base, "fee_fixed_fen": 30_000, "fee_share_bp": None}) == 30_000
    assert fee_amount({**base, "fee_fixed_fen": None, "fee_share_bp": 800}) == 40_000
    assert first_month_wage({"wage_min_fen": 20_000, "wage_unit": "day"}) == 435_000
    assert first_month_wage({"wage_min_fen": 2_500, "wage_unit": "hour"}) == 435_000
    assert fee_amount({**base, "fee_fixed_fen": None, "fee_share_bp": None}) == 0
    assert fee_amount({"wage_unit": "piece", "wage_min_fen": 100, "fee_share_bp": 500}) == 0
