"""Stripe's webhook events for market fees, each applied once (docs/billing.md).

Payments: ``payment_intent.succeeded`` books the fee; ``payment_failed``/``canceled``
reopen it. Refunds, made on the platform or in Stripe's dashboard: ``charge.refunded``,
``refund.created``/``updated`` and ``charge.refund.updated`` book each Stripe refund
once (``fees.book_refund``), never beyond what was paid; one that arrives ahead of its
payment's books the payment first, fetched from Stripe, or is refused so Stripe
sends it again.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from billing.config import BillingConfig
from billing.fees import book_refund, book_success, by_placement, fee_for_intent
from billing.ledger import service as ledger
from billing.models import MarketFee, StripeEvent
from billing.stripe import StripeClient
from marketplace import audit
from marketplace.access import SYSTEM
from marketplace.errors import Conflict, Invalid

log = logging.getLogger(__name__)

PAYMENT_EVENTS = (
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
)
# Stripe tells of a refund as the charge (charge.refunded: every refund so far) or as
# the refund itself (refund.created/updated, charge.refund.updated).
REFUND_EVENTS = ("charge.refunded", "charge.refund.updated", "refund.created", "refund.updated")


async def handle_event(
    session: AsyncSession,
    *,
    event: dict[str, Any],
    config: BillingConfig,
    client: StripeClient | None = None,
) -> str:
    """Apply one verified webhook event once. Returns what happened, for the log.

    ``client`` lets a refund event that arrives before its payment's event fetch the
    PaymentIntent, and a ``charge.refunded`` without its refund list fetch it."""
    event_id = str(event.get("id") or "")
    if not event_id:
        raise Invalid("id", "事件缺少 id")
    if await session.get(StripeEvent, event_id) is not None:
        return "duplicate"
    obj = (event.get("data") or {}).get("object") or {}
    savepoint = await session.begin_nested()
    try:
        session.add(
            StripeEvent(
                id=event_id,
                type=str(event.get("type")),
                object_id=obj.get("id"),
                created=int(event.get("created") or 0),
            )
        )
        await session.flush()
    except IntegrityError:
        await savepoint.rollback()
        return "duplicate"  # a concurrent delivery of the same event won
    await savepoint.commit()
    kind = event.get("type")
    if kind in REFUND_EVENTS:
        return await _apply_refund_event(session, obj, config=config, client=client)
    if kind not in PAYMENT_EVENTS:
        return "ignored"
    fee = await fee_for_intent(session, obj)
    if fee is None:
        return "unknown"
    if kind == "payment_intent.succeeded":
        # "already_booked": a refund event that came first booked the payment too.
        return "booked" if await book_success(session, fee, obj, config) else "already_booked"
    if fee.status != "processing" or fee.payment_intent_id not in (None, obj.get("id")):
        return "stale"  # an older event arriving late: the fee has moved on
    fee.status = "due"  # failed or cancelled: the employer may pay again
    fee.payment_intent_id = None
    fee.client_secret = None
    session.add(fee)
    await session.flush()
    return "reopened"


# A refund Stripe has taken from the balance: booked. A failed or cancelled one was
# never taken (Stripe adds back a refund_failure balance transaction), so not booked.
BOOKABLE_REFUND = ("succeeded", "pending")


async def _apply_refund_event(
    session: AsyncSession,
    obj: dict[str, Any],
    *,
    config: BillingConfig,
    client: StripeClient | None,
) -> str:
    """A refund made anywhere, on the platform or in Stripe's dashboard."""
    if obj.get("object") == "refund":
        charge_id, intent_id, refunds = obj.get("charge"), obj.get("payment_intent"), [obj]
    else:  # the charge, with its refunds listed (older API versions) or not
        charge_id, intent_id = obj.get("id"), obj.get("payment_intent")
        listed = obj.get("refunds") if isinstance(obj.get("refunds"), dict) else None
        if listed is not None and not listed.get("has_more"):
            refunds = list(listed.get("data") or [])
        elif client is not None and charge_id:
            refunds = await client.charge_refunds(str(charge_id))
        else:
            raise Conflict("无法取得这笔退款的明细，请稍后重发", field="refunds")
    charge_id, intent_id = _id_of(charge_id), _id_of(intent_id)
    fee = await _fee_for_refund(session, intent_id, charge_id, client)
    if fee is None:
        return "unknown"
    if fee.entry_id is None:
        await _book_payment_first(
            session, fee, intent_id=intent_id, charge_id=charge_id, config=config, client=client
        )
    total = 0
    for item in refunds:
        if item.get("status", "succeeded") not in BOOKABLE_REFUND:
            await _flag_failed_refund(session, fee, str(item["id"]))
            continue
        total += await book_refund(
            session, fee, refund_id=str(item["id"]), amount=int(item.get("amount") or 0)
        )
    return "refund_booked" if total else "refund_nothing_new"


async def _flag_failed_refund(session: AsyncSession, fee: MarketFee, refund_id: str) -> None:
    """A refund Stripe reports failed after we booked it: said loudly, not undone
    (finance corrects it; docs/billing.md, "Not done yet")."""
    if await ledger.find_entry(session, f"fee:{fee.id}:refund:{refund_id}") is None:
        return
    log.warning("refund %s on fee %s failed at Stripe after it was booked", refund_id, fee.id)
    await audit.record(
        session=session,
        actor=SYSTEM,
        action="fee.refund_failed",
        object_type="market_fee",
        object_id=fee.id,
        detail={"refund_id": refund_id},
    )


async def _fee_for_refund(
    session: AsyncSession,
    intent_id: Any,
    charge_id: Any,
    client: StripeClient | None,
) -> MarketFee | None:
    for column, value in (
        (MarketFee.payment_intent_id, intent_id),
        (MarketFee.charge_id, charge_id),
    ):
        if value:
            fee = (
                await session.execute(select(MarketFee).where(col(column) == str(value)))
            ).scalar_one_or_none()
            if fee is not None:
                return await by_placement(session, fee.placement_id, lock=True)
    if client is None:
        return None
    if not intent_id and charge_id:
        # A refund made on the charge names no PaymentIntent; the charge does.
        intent_id = _id_of((await client.retrieve_charge(str(charge_id))).get("payment_intent"))
    if intent_id:
        # Our PaymentIntent id may not be stored yet (the request that made it has not
        # committed): its metadata names the placement.
        return await fee_for_intent(session, await client.retrieve_payment_intent(str(intent_id)))
    return None


def _id_of(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("id")
    return str(value) if value else None


async def _book_payment_first(
    session: AsyncSession,
    fee: MarketFee,
    *,
    intent_id: str | None,
    charge_id: str | None,
    config: BillingConfig,
    client: StripeClient | None,
) -> None:
    """A refund event ahead of its payment's: ask Stripe for the payment and book it
    first; if it cannot be had, refuse the event so that Stripe sends it again."""
    intent = None
    # The fee may not hold its PaymentIntent's id yet (the request that made it has not
    # committed); the refund or its charge names it.
    intent_id = fee.payment_intent_id or intent_id
    if client is not None and not intent_id and charge_id:
        intent_id = _id_of((await client.retrieve_charge(charge_id)).get("payment_intent"))
    if client is not None and intent_id:
        intent = await client.retrieve_payment_intent(intent_id)
    if intent is None or intent.get("status") != "succeeded":
        raise Conflict("这笔服务费的付款尚未入账，退款稍后再记", field="payment_intent")
    await book_success(session, fee, intent, config)
