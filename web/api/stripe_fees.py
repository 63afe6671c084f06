"""Market fees through Stripe: the employer's PaymentIntent, finance's refunds, and
Stripe's webhook (no login: the signature is the credential)."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Controller, Request, Response, post
from litestar.params import JSONBody

from billing import fee_webhooks, fees
from billing.stripe import SignatureError, StripeClient, StripeError, verify
from marketplace.access import require
from marketplace.errors import DomainError, Invalid
from web.api.billing import IdempotencyKey, config_of
from web.auth import requires_login
from web.deps import CurrentActor, Db, RowId

log = logging.getLogger(__name__)


class StripeUnavailable(DomainError):
    status = 503


def stripe_client(request: Request[Any, Any, Any]) -> StripeClient:
    settings = request.app.state.settings.stripe
    if not settings.api_key:
        raise StripeUnavailable("未配置 Stripe（LAOWU_STRIPE_API_KEY）", field="stripe")
    return StripeClient(api_key=settings.api_key, api_base=settings.api_base)


async def _call_stripe(coro: Any) -> Any:
    try:
        return await coro
    except StripeError as exc:
        raise StripeUnavailable(f"支付服务暂时不可用：{exc}", field="stripe") from exc


class PlacementFeesController(Controller):
    path = "/api/v1/placements"
    tags = ["服务费"]
    guards = [requires_login]

    @post("/{placement_id:int}/fee")
    async def pay(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        actor: CurrentActor,
        placement_id: RowId,
        idempotency_key: IdempotencyKey = None,
    ) -> fees.FeePublic:
        # Authorise and find the fee before talking to Stripe.
        await fees.get_fee(db, actor=actor, placement_id=placement_id)
        async with stripe_client(request) as client:
            fee = await _call_stripe(
                fees.create_intent(
                    db, actor=actor, client=client, placement_id=placement_id, key=idempotency_key
                )
            )
        return fees.to_public(fee)

    @post("/{placement_id:int}/fee/refund")
    async def refund(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        actor: CurrentActor,
        placement_id: RowId,
        data: JSONBody[fees.RefundIn],
        idempotency_key: IdempotencyKey = None,
    ) -> fees.FeePublic:
        require(actor, "fee.refund")
        async with stripe_client(request) as client:
            fee = await _call_stripe(
                fees.refund(
                    db,
                    actor=actor,
                    client=client,
                    placement_id=placement_id,
                    data=data,
                    key=idempotency_key,
                )
            )
        return fees.to_public(fee)


@post("/api/v1/webhooks/stripe", tags=["服务费"], status_code=200)
async def stripe_webhook(request: Request[Any, Any, Any], db: Db) -> Response[dict[str, str]]:
    secret = request.app.state.settings.stripe.webhook_secret
    if not secret:
        raise StripeUnavailable("未配置 Stripe webhook 密钥", field="stripe")
    payload = await request.body()
    try:
        event = verify(payload, request.headers.get("Stripe-Signature"), secret)
    except SignatureError as exc:
        raise Invalid("Stripe-Signature", str(exc)) from exc
    # With the secret key, refund events can fetch what they lack from Stripe (a
    # payment whose own event has not arrived yet, a charge's refund list).
    client = stripe_client(request) if request.app.state.settings.stripe.api_key else None
    try:
        outcome = await _call_stripe(
            fee_webhooks.handle_event(db, event=event, config=config_of(request), client=client)
        )
    finally:
        if client is not None:
            await client.aclose()
    log.info("stripe event %s %s: %s", event.get("id"), event.get("type"), outcome)
    return Response({"outcome": outcome})
