"""Market fees (服务费): a placement's fee paid by the employer through Stripe.

``placement.confirmed`` records the fee as due (fixed, or a share of the first
month's wage). The employer's payment creates a PaymentIntent whose idempotency key
comes from the placement; nothing is booked until Stripe's webhook says
``payment_intent.succeeded``. Then, on the market ledger only:

  Dr stripe_clearing fee / Cr platform_revenue (fee − broker part) / Cr broker (part)

Refunds, on the platform (checked first: never more than what is left, localstripe
would accept more) or in Stripe's dashboard (``fee_webhooks``), book the mirror image
once per Stripe refund id (``book_refund``). Webhook events are applied in
``fee_webhooks``: each event id once, matched to the fee by our metadata, so their
order does not matter. Paying by card on the employer's page: ``fee_cards``. No
worker data goes to Stripe: only the amount, the currency and our placement and fee
ids.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from billing import accounts
from billing.config import BillingConfig
from billing.ledger import service as ledger
from billing.ledger.models import EntryStatus, Ledger, LedgerEntry, Side
from billing.models import MarketFee
from billing.pools import check_key
from billing.stripe import StripeClient
from marketplace import audit
from marketplace.access import SYSTEM, Actor, Role, require
from marketplace.clock import utcnow
from marketplace.errors import Conflict, Invalid, NotFound
from marketplace.events import OutboxEvent
from marketplace.organizations import service as organizations

log = logging.getLogger(__name__)

# Working days in a month (国家规定月计薪天数 21.75) and hours in a working day.
MONTH_DAYS_X100 = 2175
DAY_HOURS = 8


class FeePublic(BaseModel):
    placement_id: int
    amount_fen: int
    refunded_fen: int
    status: str
    payment_intent_id: str | None
    client_secret: str | None


class RefundIn(BaseModel):
    amount_fen: int = Field(gt=0, le=10**11, description="退款金额（分）")


def to_public(fee: MarketFee) -> FeePublic:
    return FeePublic(
        placement_id=fee.placement_id,
        amount_fen=fee.amount_fen,
        refunded_fen=fee.refunded_fen,
        status=fee.status,
        payment_intent_id=fee.payment_intent_id,
        client_secret=fee.client_secret,
    )


def first_month_wage(payload: dict[str, Any]) -> int | None:
    """The first month's wage from the job's lower wage bound (what the worker is
    sure to earn): monthly as is, daily × 21.75, hourly × 8 × 21.75."""
    low = payload.get("wage_min_fen") or payload.get("wage_max_fen")
    if low is None:
        return None
    unit = str(payload.get("wage_unit") or "month")
    if unit == "month":
        return int(low)
    if unit == "day":
        return int(low) * MONTH_DAYS_X100 // 100
    if unit == "hour":
        return int(low) * DAY_HOURS * MONTH_DAYS_X100 // 100
    return None  # piece rates: no basis for a share


def fee_amount(payload: dict[str, Any]) -> int:
    if payload.get("fee_fixed_fen") is not None:
        return int(payload["fee_fixed_fen"])
    if payload.get("fee_share_bp") is not None:
        wage = first_month_wage(payload)
        return 0 if wage is None else wage * int(payload["fee_share_bp"]) // 10_000
    return 0


async def on_placement_confirmed(session: AsyncSession, event: OutboxEvent) -> None:
    p = event.payload
    placement_id = int(p["placement_id"])
    if await by_placement(session, placement_id) is not None:
        return
    amount = fee_amount(p)
    if amount <= 0:
        return  # the job charges no fee
    session.add(
        MarketFee(
            placement_id=placement_id,
            event_id=event.id,
            job_id=p.get("job_id"),
            organization_id=p.get("organization_id"),
            broker_id=p.get("broker_id"),
            amount_fen=amount,
        )
    )
    await session.flush()


async def by_placement(
    session: AsyncSession, placement_id: int, *, lock: bool = False
) -> MarketFee | None:
    stmt = select(MarketFee).where(col(MarketFee.placement_id) == placement_id)
    if lock and session.bind is not None and session.bind.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_fee(session: AsyncSession, *, actor: Actor, placement_id: int) -> MarketFee:
    require(actor, "fee.pay")
    fee = await by_placement(session, placement_id)
    if fee is None:
        raise NotFound("该录用没有待付的服务费", field="placement_id")
    if actor.role in (Role.employer, Role.agency):
        # An organisation pays its own placements' fees only; another's is not found.
        org = await organizations.organization_of(session, actor)
        if org is None or org.id != fee.organization_id:
            raise NotFound("该录用没有待付的服务费", field="placement_id")
    return fee


async def create_intent(
    session: AsyncSession,
    *,
    actor: Actor,
    client: StripeClient,
    placement_id: int,
    key: str | None,
) -> MarketFee:
    check_key(key)
    fee = await get_fee(session, actor=actor, placement_id=placement_id)
    if fee.payment_intent_id is not None or fee.status != "due":
        return fee  # one PaymentIntent per placement
    intent = await client.create_payment_intent(
        {
            "amount": fee.amount_fen,
            "currency": "cny",
            "payment_method_types": ["card"],
            "metadata": {"placement_id": placement_id, "fee_id": fee.id},
        },
        idempotency_key=f"laowu-placement-fee-{placement_id}",
    )
    fee.payment_intent_id = str(intent["id"])
    fee.client_secret = intent.get("client_secret")
    fee.status = "processing"
    session.add(fee)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="fee.intent",
        object_type="market_fee",
        object_id=fee.id,
        detail={"placement_id": placement_id, "amount_fen": fee.amount_fen},
    )
    return fee


def _broker_part(amount: int, bp: int) -> int:
    return amount * bp // 10_000


async def book_success(
    session: AsyncSession, fee: MarketFee, intent: dict[str, Any], config: BillingConfig
) -> bool:
    """Book a succeeded payment; False when it was booked already."""
    if fee.entry_id is not None:
        return False
    amount = int(intent.get("amount_received") or intent.get("amount") or 0)
    if amount <= 0:
        raise Invalid("amount", "Stripe 事件金额无效")
    fee.amount_fen = amount  # what Stripe actually received is what we book
    fee.broker_share_bp = config.broker_fee_share_bp if fee.broker_id else 0
    accts = await accounts.market_accounts(session, fee.broker_id)
    part = _broker_part(amount, fee.broker_share_bp)
    lines = [
        ledger.Line(accts["clearing"].id or 0, Side.debit, amount),
        ledger.Line(accts["platform"].id or 0, Side.credit, amount - part),
    ]
    if part > 0:
        lines.append(ledger.Line(accts["broker"].id or 0, Side.credit, part))
    entry = await ledger.post(
        session,
        key=f"fee:{fee.id}:paid",
        ledger=Ledger.market,
        kind="market_fee",
        lines=[ln for ln in lines if ln.amount_fen > 0],
        memo=f"服务费 录用{fee.placement_id} {intent.get('id')}",
    )
    charge = intent.get("latest_charge")
    fee.charge_id = charge.get("id") if isinstance(charge, dict) else charge
    fee.entry_id = entry.id
    fee.payment_intent_id = fee.payment_intent_id or str(intent.get("id"))
    fee.status = "succeeded"
    fee.paid_at = utcnow()
    session.add(fee)
    await session.flush()
    return True


async def fee_for_intent(session: AsyncSession, intent: dict[str, Any]) -> MarketFee | None:
    """By our metadata first: the webhook may arrive before the transaction that
    stored the PaymentIntent's id has committed."""
    meta = intent.get("metadata") or {}
    if str(meta.get("placement_id", "")).isdigit():
        fee = await by_placement(session, int(meta["placement_id"]), lock=True)
        if fee is not None:
            return fee
    if intent.get("id"):
        return (
            await session.execute(
                select(MarketFee).where(col(MarketFee.payment_intent_id) == str(intent["id"]))
            )
        ).scalar_one_or_none()
    return None


async def refund(
    session: AsyncSession,
    *,
    actor: Actor,
    client: StripeClient,
    placement_id: int,
    data: RefundIn,
    key: str | None,
) -> MarketFee:
    key = check_key(key)
    require(actor, "fee.refund")
    fee = await by_placement(session, placement_id, lock=True)
    if fee is None:
        raise NotFound("该录用没有服务费", field="placement_id")
    if fee.status not in ("succeeded", "refunded") or fee.payment_intent_id is None:
        raise Conflict("服务费尚未付款成功，不能退款", field="status")
    left = fee.amount_fen - fee.refunded_fen
    if data.amount_fen > left:
        raise Invalid("amount_fen", f"退款金额超过可退余额 {left} 分")
    refund_obj = await client.create_refund(
        fee.payment_intent_id,
        data.amount_fen,
        idempotency_key=f"laowu-fee-{fee.id}-refund-{actor.user_id}-{key}",
    )
    # Its webhook, arriving later (or earlier, on another connection), books nothing
    # more: the Stripe refund id is the ledger key either way.
    await book_refund(
        session, fee, refund_id=str(refund_obj["id"]), amount=data.amount_fen, actor=actor
    )
    await audit.record(
        session=session,
        actor=actor,
        action="fee.refund",
        object_type="market_fee",
        object_id=fee.id,
        detail={"placement_id": placement_id, "amount_fen": data.amount_fen},
    )
    return fee


def _refund_split(left: int, amount: int, bp: int) -> tuple[int, int]:
    """(platform, broker) parts of refunding ``amount`` out of ``left`` still paid.

    The broker's reversal is part(left) − part(left − amount), part(x) = ⌊x·bp/10⁴⌋,
    so however a fee is refunded in pieces, the broker's reversals add up to
    part(fee) − part(fee − refunded): at a full refund exactly what was credited,
    and the platform's exactly its share; no fen is created or lost."""
    broker = _broker_part(left, bp) - _broker_part(left - amount, bp)
    return amount - broker, broker


async def book_refund(
    session: AsyncSession,
    fee: MarketFee,
    *,
    refund_id: str,
    amount: int,
    actor: Actor = SYSTEM,
) -> int:
    """Book a Stripe refund once per refund id, never beyond what is left of the
    payment. Returns the fen booked now: 0 for a refund already booked or when
    nothing is left (Stripe-compatible servers such as localstripe over-refund)."""
    key = f"fee:{fee.id}:refund:{refund_id}"
    if await ledger.find_entry(session, key) is not None:
        return 0
    left = fee.amount_fen - fee.refunded_fen
    booked = min(amount, left)
    if booked != amount:
        log.warning(
            "refund %s of %s fen on fee %s exceeds the %s fen left: booking %s",
            refund_id, amount, fee.id, left, max(booked, 0),
        )  # fmt: skip
        await audit.record(
            session=session,
            actor=SYSTEM,
            action="fee.refund_excess",
            object_type="market_fee",
            object_id=fee.id,
            detail={"refund_id": refund_id, "amount_fen": amount, "left_fen": left},
        )
    if booked <= 0:
        return 0
    platform, broker = _refund_split(left, booked, fee.broker_share_bp)
    accts = await accounts.market_accounts(session, fee.broker_id)
    lines = [
        ledger.Line(accts["platform"].id or 0, Side.debit, platform),
        ledger.Line(accts["clearing"].id or 0, Side.credit, booked),
    ]
    if broker > 0:
        lines.append(ledger.Line(accts["broker"].id or 0, Side.debit, broker))
    await ledger.post(
        session,
        key=key,
        ledger=Ledger.market,
        kind="market_refund",
        lines=[ln for ln in lines if ln.amount_fen > 0],
        memo=f"退款 录用{fee.placement_id} {refund_id}",
        created_by=actor.user_id,
    )
    fee.refunded_fen += booked
    fee.status = "refunded" if fee.refunded_fen == fee.amount_fen else "succeeded"
    session.add(fee)
    await session.flush()
    return booked


class Mismatch(BaseModel):
    kind: str  # missing_in_stripe | missing_here | amount_differs
    reference: str
    ours_fen: int | None
    stripe_fen: int | None


async def market_mismatches(
    session: AsyncSession, *, client: StripeClient, start: datetime, end: datetime
) -> list[Mismatch]:
    """Our booked payments (by charge) and refunds (by refund id) in [start, end)
    against Stripe's balance transactions of the same window."""
    ours: dict[str, int] = {}
    fees = (
        await session.execute(
            select(MarketFee).where(
                col(MarketFee.paid_at) >= start,
                col(MarketFee.paid_at) < end,
                col(MarketFee.charge_id).is_not(None),
            )
        )
    ).scalars()
    for fee in fees:
        ours[str(fee.charge_id)] = fee.amount_fen
    refunds = (
        await session.execute(
            select(LedgerEntry).where(
                col(LedgerEntry.kind) == "market_refund",
                col(LedgerEntry.status) == EntryStatus.posted,
                col(LedgerEntry.effective_at) >= start,
                col(LedgerEntry.effective_at) < end,
            )
        )
    ).scalars()
    for entry in refunds:
        refund_id = entry.idempotency_key.rsplit(":", 1)[-1]
        postings = await ledger.postings_of(session, entry.id or 0)
        ours[refund_id] = -sum(p.amount_fen for p in postings if p.side == Side.credit)
    theirs: dict[str, int] = {}
    async for txn in client.balance_transactions(
        created_gte=int(start.timestamp()), created_lt=int(end.timestamp())
    ):
        if txn.get("type") in ("charge", "refund", "payment"):
            theirs[str(txn["source"])] = theirs.get(str(txn["source"]), 0) + int(txn["amount"])
    found = []
    for ref in sorted(set(ours) | set(theirs)):
        a, b = ours.get(ref), theirs.get(ref)
        if a is None:
            found.append(Mismatch(kind="missing_here", reference=ref, ours_fen=None, stripe_fen=b))
        elif b is None:
            found.append(
                Mismatch(kind="missing_in_stripe", reference=ref, ours_fen=a, stripe_fen=None)
            )
        elif a != b:
            found.append(Mismatch(kind="amount_differs", reference=ref, ours_fen=a, stripe_fen=b))
    return found


def utc_from_ts(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)
