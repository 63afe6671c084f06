"""A broker's statement: public subsidies and market income side by side, each line
traceable to its task (submission) or placement, and what payouts settled."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from billing.ledger.models import LedgerAccount
from billing.models import SUBSIDY_LABELS, MarketFee, Subsidy, SubsidyStatus
from marketplace.access import Actor, Role, require
from marketplace.brokers.models import Broker
from marketplace.errors import NotFound
from marketplace.funding import funding_label


class SubsidyItem(BaseModel):
    id: int
    kind: str
    task_id: int | None
    submission_id: int | None
    task_type_code: str | None
    period: str | None
    source: str
    source_label: str
    amount_fen: int
    status: str
    status_label: str
    approved_at: datetime
    paid_at: datetime | None
    batch_id: int | None
    reason: str | None


class MarketItem(BaseModel):
    placement_id: int
    job_id: int | None
    fee_fen: int
    broker_part_fen: int
    status: str
    paid_at: datetime | None


class Earnings(BaseModel):
    broker_id: int
    broker_name: str
    subsidies: list[SubsidyItem]
    market: list[MarketItem]
    subsidy_paid_fen: int
    subsidy_due_fen: int  # reserved and payable, not yet paid
    subsidy_waiting_fen: int  # approved, waiting for the pool's money
    subsidy_owed_back_fen: int  # reversed after payment, not yet netted by a payout
    market_fen: int


def broker_part(fee: MarketFee) -> int:
    net = fee.amount_fen - fee.refunded_fen
    return net * fee.broker_share_bp // 10_000


async def statement(session: AsyncSession, *, actor: Actor, broker_id: int) -> Earnings:
    broker = await session.get(Broker, broker_id)
    if broker is None:
        require(actor, "earnings.view")
        raise NotFound("经纪人不存在", field="broker_id")
    if actor.role == Role.broker:
        require(actor, "earnings.view")
        if broker.user_id != actor.user_id:
            raise NotFound("经纪人不存在", field="broker_id")  # others' earnings do not exist
    elif not actor.is_system:
        require(actor, "earnings.view")
        if not broker.village_code.startswith(actor.region_code):
            raise NotFound("经纪人不存在", field="broker_id")
    rows = list(
        (
            await session.execute(
                select(Subsidy)
                .where(col(Subsidy.broker_id) == broker_id)
                .order_by(col(Subsidy.approved_at).desc(), col(Subsidy.id).desc())
            )
        ).scalars()
    )
    fees = list(
        (
            await session.execute(
                select(MarketFee)
                .where(col(MarketFee.broker_id) == broker_id)
                .order_by(col(MarketFee.id).desc())
            )
        ).scalars()
    )

    def total(*states: str) -> int:
        return sum(s.amount_fen for s in rows if s.status in states)

    # What is still owed back: the receivables' balances. A reversed subsidy stays
    # ``reversed`` after a payout netted it, so summing those would never go down.
    owed_back = (
        await session.execute(
            select(func.coalesce(func.sum(col(LedgerAccount.balance_fen)), 0)).where(
                col(LedgerAccount.kind) == "broker_receivable",
                col(LedgerAccount.broker_id) == broker_id,
            )
        )
    ).scalar_one()
    booked = [f for f in fees if f.status in ("succeeded", "refunded")]
    return Earnings(
        broker_id=broker_id,
        broker_name=broker.name,
        subsidies=[
            SubsidyItem(
                id=s.id or 0,
                kind=s.kind,
                task_id=s.task_id,
                submission_id=s.submission_id,
                task_type_code=s.task_type_code,
                period=s.period,
                source=s.source,
                source_label=funding_label(s.source),
                amount_fen=s.amount_fen,
                status=s.status,
                status_label=SUBSIDY_LABELS.get(SubsidyStatus(s.status), s.status),
                approved_at=s.approved_at,
                paid_at=s.paid_at,
                batch_id=s.batch_id,
                reason=s.reason,
            )
            for s in rows
        ],
        market=[
            MarketItem(
                placement_id=f.placement_id,
                job_id=f.job_id,
                fee_fen=f.amount_fen - f.refunded_fen,
                broker_part_fen=broker_part(f),
                status=f.status,
                paid_at=f.paid_at,
            )
            for f in booked
        ],
        subsidy_paid_fen=total(SubsidyStatus.paid),
        subsidy_due_fen=total(SubsidyStatus.pending, SubsidyStatus.payable),
        subsidy_waiting_fen=total(SubsidyStatus.awaiting_funds),
        subsidy_owed_back_fen=int(owed_back),
        market_fen=sum(broker_part(f) for f in booked),
    )
