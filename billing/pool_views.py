"""What the finance dashboard reads about fund pools: pools by name, and the
maker-checker requests (appropriations above the approval threshold, every transfer)
waiting for a second finance user or recently decided, with people by name."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from billing.config import BillingConfig
from billing.models import (
    Appropriation,
    FundPool,
    PoolTransfer,
    RequestStatus,
    Subsidy,
    SubsidyStatus,
)
from billing.pools import list_pools, yuan_text
from marketplace.access import Actor, require
from marketplace.accounts.models import User
from marketplace.clock import as_utc
from marketplace.funding import funding_label
from marketplace.regions.models import Region


async def pending_requests(
    session: AsyncSession, actor: Actor
) -> tuple[list[Appropriation], list[PoolTransfer]]:
    require(actor, "ledger.view")
    pools = {p.id: p for p in await list_pools(session, actor)}
    apps = (
        await session.execute(
            select(Appropriation)
            .where(
                col(Appropriation.status) == RequestStatus.pending,
                col(Appropriation.pool_id).in_(list(pools)),
            )
            .order_by(col(Appropriation.id))
        )
    ).scalars()
    transfers = (
        await session.execute(
            select(PoolTransfer)
            .where(
                col(PoolTransfer.status) == RequestStatus.pending,
                col(PoolTransfer.from_pool_id).in_(list(pools)),
            )
            .order_by(col(PoolTransfer.id))
        )
    ).scalars()
    return list(apps), list(transfers)


async def awaiting_summary(
    session: AsyncSession, pool_ids: list[int]
) -> dict[int, tuple[int, int]]:
    """Per pool: how many subsidies wait for funds, and how much they need."""
    rows = await session.execute(
        select(col(Subsidy.pool_id), func.count(), func.sum(col(Subsidy.amount_fen)))
        .where(
            col(Subsidy.pool_id).in_(pool_ids),
            col(Subsidy.status) == SubsidyStatus.awaiting_funds,
        )
        .group_by(col(Subsidy.pool_id))
    )
    return {int(p): (int(n), int(s or 0)) for p, n, s in rows.all()}


class RequestView(BaseModel):
    """A maker-checker request as finance reads it: pools by name, people by name,
    and why it needs a second finance user."""

    kind: str  # appropriation | transfer
    id: int
    amount_fen: int
    document_no: str
    note: str
    pool_id: int  # the pool it pays into (appropriation) or takes from (transfer)
    pool_label: str
    to_pool_id: int | None
    to_label: str | None
    status: str
    requested_by: int | None
    requester: str
    approver: str | None
    why: str
    created_at: datetime
    decided_at: datetime | None


async def pool_labels(session: AsyncSession, found: list[FundPool]) -> dict[int, str]:
    """``{pool_id: "渝中区·就业补助资金"}``."""
    codes = sorted({p.district_code for p in found})
    names = dict(
        (
            await session.execute(
                select(col(Region.code), col(Region.name)).where(col(Region.code).in_(codes))
            )
        ).all()
    )
    return {
        p.id or 0: f"{names.get(p.district_code, p.district_code)}·{funding_label(p.source)}"
        for p in found
    }


async def describe_requests(
    session: AsyncSession, actor: Actor, *, config: BillingConfig, recent: int = 10
) -> tuple[list[RequestView], list[RequestView]]:
    """The requests waiting for a second finance user in the caller's region, oldest
    first, and the ``recent`` last ones a second user decided, newest first."""
    require(actor, "ledger.view")
    found = await list_pools(session, actor)
    labels = await pool_labels(session, found)
    ids = list(labels)
    pending_apps, pending_transfers = await pending_requests(session, actor)
    decided_apps = (
        await session.execute(
            select(Appropriation)
            .where(
                col(Appropriation.pool_id).in_(ids),
                col(Appropriation.status) != RequestStatus.pending,
                col(Appropriation.approved_by).is_not(None),
            )
            .order_by(col(Appropriation.decided_at).desc(), col(Appropriation.id).desc())
            .limit(recent)
        )
    ).scalars()
    decided_transfers = (
        await session.execute(
            select(PoolTransfer)
            .where(
                col(PoolTransfer.from_pool_id).in_(ids),
                col(PoolTransfer.status) != RequestStatus.pending,
            )
            .order_by(col(PoolTransfer.decided_at).desc(), col(PoolTransfer.id).desc())
            .limit(recent)
        )
    ).scalars()
    apps = [*pending_apps, *decided_apps]
    transfers = [*pending_transfers, *decided_transfers]
    people = {a.requested_by for a in apps} | {a.approved_by for a in apps}
    people |= {t.requested_by for t in transfers} | {t.approved_by for t in transfers}
    names = dict(
        (
            await session.execute(
                select(col(User.id), col(User.display_name)).where(
                    col(User.id).in_([u for u in people if u is not None])
                )
            )
        ).all()
    )

    def who(user_id: int | None) -> str:
        return str(names.get(user_id, f"用户 {user_id}")) if user_id else "系统"

    threshold = f"超过审核线 {yuan_text(config.approval_threshold_fen)}，需另一位财务人员审核"
    views = [
        RequestView(
            kind="appropriation",
            id=a.id or 0,
            amount_fen=a.amount_fen,
            document_no=a.document_no,
            note=a.note,
            pool_id=a.pool_id,
            pool_label=labels.get(a.pool_id, str(a.pool_id)),
            to_pool_id=None,
            to_label=None,
            status=a.status,
            requested_by=a.requested_by,
            requester=who(a.requested_by),
            approver=who(a.approved_by) if a.approved_by else None,
            why=threshold,
            created_at=a.created_at,
            decided_at=a.decided_at,
        )
        for a in apps
    ] + [
        RequestView(
            kind="transfer",
            id=t.id or 0,
            amount_fen=t.amount_fen,
            document_no=t.document_no,
            note=t.note,
            pool_id=t.from_pool_id,
            pool_label=labels.get(t.from_pool_id, str(t.from_pool_id)),
            to_pool_id=t.to_pool_id,
            to_label=labels.get(t.to_pool_id, f"资金池 {t.to_pool_id}"),
            status=t.status,
            requested_by=t.requested_by,
            requester=who(t.requested_by),
            approver=who(t.approved_by) if t.approved_by else None,
            why="资金调剂一律需另一位财务人员审核",
            created_at=t.created_at,
            decided_at=t.decided_at,
        )
        for t in transfers
    ]
    pending = sorted(
        (v for v in views if v.status == RequestStatus.pending),
        key=lambda v: (as_utc(v.created_at), v.kind, v.id),
    )
    done = sorted(
        (v for v in views if v.status != RequestStatus.pending),
        key=lambda v: (as_utc(v.decided_at or v.created_at), v.kind, v.id),
        reverse=True,
    )
    return pending, done[:recent]
