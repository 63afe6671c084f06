"""Paying a placement fee by card on the employer's page, without the card ever
reaching our server.

Stripe.js collects the card in the browser and sends it straight to Stripe:

1. ``start_card_payment``: a Stripe Customer for the organisation and a SetupIntent;
   the page gets the SetupIntent's client secret.
2. The page calls ``stripe.confirmCardSetup(secret, {payment_method: {card}})``:
   Stripe checks the card and makes a PaymentMethod (a declined card stops here).
3. ``charge_card``: we read the SetupIntent back from Stripe (never trusting the
   browser's word), put its PaymentMethod on our PaymentIntent for the fee (one per
   placement, made now if it is not yet) and confirm it. A card
   that needs 3-D Secure leaves it ``requires_action``: the page then calls
   ``stripe.confirmCardPayment(payment_intent_secret)``.
4. Booking waits, as always, for the ``payment_intent.succeeded`` webhook; the page
   polls the fee's status.

Why not ``confirmCardPayment(secret, {payment_method: {card}})`` in one step: it is
Stripe.js's usual call, but localstripe's Stripe.js look-alike implements that call as
3-D Secure only and never sends the card, so no test could pay through it. This flow
uses only calls that both implement (docs/billing.md, "Paying by card").
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from billing import fees
from billing.stripe import StripeClient, StripeError
from marketplace.access import Actor
from marketplace.errors import Conflict, Invalid

PAYABLE = ("due", "processing")


class CardSetup(BaseModel):
    setup_client_secret: str


class CardCharge(BaseModel):
    status: str  # the PaymentIntent's: succeeded | processing | requires_action | …
    payment_client_secret: str | None  # only when the card needs 3-D Secure


async def start_card_payment(
    session: AsyncSession, *, actor: Actor, client: StripeClient, placement_id: int
) -> CardSetup:
    fee = await fees.get_fee(session, actor=actor, placement_id=placement_id)
    if fee.status not in PAYABLE:
        raise Conflict("这笔服务费已付款，无需再付", field="status")
    # No PaymentIntent yet: a card declined here leaves the fee plainly due.
    customer = await client.create_customer(
        {"metadata": {"organization_id": fee.organization_id}},
        idempotency_key=f"laowu-fee-{fee.id}-customer",
    )
    # A fresh SetupIntent per attempt: one whose card was declined is spent.
    setup = await client.create_setup_intent(
        {
            "customer": customer["id"],
            "payment_method_types": ["card"],
            "usage": "on_session",
            "metadata": {"placement_id": placement_id, "fee_id": fee.id},
        },
        idempotency_key=f"laowu-fee-{fee.id}-setup-{uuid.uuid4().hex}",
    )
    return CardSetup(setup_client_secret=str(setup["client_secret"]))


async def charge_card(
    session: AsyncSession,
    *,
    actor: Actor,
    client: StripeClient,
    placement_id: int,
    setup_intent_id: str,
) -> CardCharge:
    fee = await fees.get_fee(session, actor=actor, placement_id=placement_id)
    if fee.status not in PAYABLE:
        raise Conflict("这笔服务费已付款，无需再付", field="status")
    try:
        setup = await client.retrieve_setup_intent(setup_intent_id)
    except StripeError as exc:
        if exc.status == 404:
            raise Invalid("setup_intent_id", "找不到这次银行卡验证，请重新付款") from exc
        raise
    if str((setup.get("metadata") or {}).get("fee_id")) != str(fee.id):
        raise Invalid("setup_intent_id", "这次银行卡验证不属于这笔服务费")
    method = _id_of(setup.get("payment_method"))
    if setup.get("status") != "succeeded" or not method:
        raise Invalid("setup_intent_id", "银行卡尚未验证通过，请重新输入")
    fee = await fees.create_intent(
        session, actor=actor, client=client, placement_id=placement_id, key=f"card-{placement_id}"
    )
    intent_id = str(fee.payment_intent_id)
    try:
        await client.update_payment_intent(
            intent_id,
            {"payment_method": method, "customer": _id_of(setup.get("customer"))},
            idempotency_key=f"laowu-fee-{fee.id}-method-{method}",
        )
        intent = await client.confirm_payment_intent(
            intent_id, idempotency_key=f"laowu-fee-{fee.id}-confirm-{method}"
        )
    except StripeError as exc:
        if exc.status == 402 or exc.code == "card_declined":
            raise Invalid("card", "银行卡扣款被拒绝，请换一张卡或联系发卡银行") from exc
        raise
    status = str(intent.get("status"))
    return CardCharge(
        status=status,
        payment_client_secret=intent.get("client_secret") if status == "requires_action" else None,
    )


def _id_of(value: Any) -> str | None:
    if isinstance(value, dict):
        return str(value.get("id")) if value.get("id") else None
    return str(value) if value else None
