"""Fund pools (资金池): one per district and funding source.

A pool's money sits in two no-overdraft accounts, ``available`` and ``reserved``
(earmarked for subsidies approved but not yet paid). ``appropriated`` counts what
finance put in (拨款, net of transfers out), ``paid`` what left to brokers,
``reversed`` what brokers owe back after a paid subsidy was reversed.

Entries:
  appropriation      Dr available        / Cr appropriated
  transfer A → B     Dr A.appropriated, Dr B.available / Cr A.available, Cr B.appropriated
Maker-checker: an appropriation above ``approval_threshold_fen`` and every transfer
wait as ``pending`` until a second finance user (not the requester) approves.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from billing.config import BillingConfig
from billing.ledger import service as ledger
from billing.ledger.models import Ledger, LedgerAccount, Side
from billing.models import Appropriation, FundPool, PoolTransfer, RequestStatus
from marketplace import audit
from marketplace.access import Actor, in_scope, require
from marketplace.clock import local, utcnow
from marketplace.errors import Conflict, Forbidden, Invalid, NotFound
from marketplace.funding import funding_label, is_funding_source
from marketplace.regions.models import Region, RegionLevel

MAX_AMOUNT_FEN = 10**13  # ¥100 billion: anything above is a typo


class AppropriationIn(BaseModel):
    amount_fen: int = Field(gt=0, le=MAX_AMOUNT_FEN, description="金额（分）")
    document_no: str = Field(min_length=1, max_length=64, description="文号")
    date: date
    note: str = Field(default="", max_length=500)


class TransferIn(BaseModel):
    to_pool_id: int = Field(ge=1, le=2_147_483_647)
    amount_fen: int = Field(gt=0, le=MAX_AMOUNT_FEN)
    document_no: str = Field(min_length=1, max_length=64)
    note: str = Field(default="", max_length=500)


class PoolPublic(BaseModel):
    id: int
    district_code: str
    source: str
    source_label: str
    balance_fen: int
    reserved_fen: int
    available_fen: int


class AppropriationPublic(BaseModel):
    id: int
    pool_id: int
    amount_fen: int
    document_no: str
    date: date
    note: str
    status: str
    entry_id: int | None
    requested_by: int | None
    approved_by: int | None


class TransferPublic(BaseModel):
    id: int
    from_pool_id: int
    to_pool_id: int
    amount_fen: int
    document_no: str
    status: str
    entry_id: int | None


def appropriation_public(a: Appropriation) -> AppropriationPublic:
    assert a.id is not None
    return AppropriationPublic(
        id=a.id,
        pool_id=a.pool_id,
        amount_fen=a.amount_fen,
        document_no=a.document_no,
        date=a.document_date,
        note=a.note,
        status=a.status,
        entry_id=a.entry_id,
        requested_by=a.requested_by,
        approved_by=a.approved_by,
    )


def transfer_public(t: PoolTransfer) -> TransferPublic:
    assert t.id is not None
    return TransferPublic(
        id=t.id,
        from_pool_id=t.from_pool_id,
        to_pool_id=t.to_pool_id,
        amount_fen=t.amount_fen,
        document_no=t.document_no,
        status=t.status,
        entry_id=t.entry_id,
    )


def yuan_text(fen: int) -> str:
    """123456 → ¥1,234.56, for messages finance reads."""
    return f"¥{fen // 100:,}.{fen % 100:02d}"


def _request_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def check_key(key: str | None) -> str:
    if key is None or not key.strip():
        raise Invalid(
            "Idempotency-Key", "缺少 Idempotency-Key 请求头：每个动账请求都要带一个唯一键"
        )
    key = key.strip()
    if len(key) > 100:
        raise Invalid("Idempotency-Key", "Idempotency-Key 不能超过 100 个字符")
    return key


async def ensure_pool(session: AsyncSession, district_code: str, source: str) -> FundPool:
    found = await find_pool(session, district_code, source)
    if found is not None:
        return found
    if not is_funding_source(source):
        raise Invalid("source", f"未知的资金来源：{source}")
    region = await session.get(Region, district_code)
    if region is None or region.level != RegionLevel.district:
        raise Invalid("district_code", f"{district_code} 不是区县代码")
    label = f"{region.name}·{funding_label(source)}"

    async def account(part: str, name: str, side: Side, no_overdraft: bool) -> LedgerAccount:
        return await ledger.ensure_account(
            session,
            code=f"pool:{district_code}:{source}:{part}",
            ledger=Ledger.subsidy,
            kind=f"pool_{part}",
            name=f"{label}·{name}",
            normal_side=side,
            no_overdraft=no_overdraft,
            district_code=district_code,
            source=source,
        )

    accounts = {
        "available": await account("available", "可用", Side.debit, True),
        "reserved": await account("reserved", "已预留", Side.debit, True),
        "appropriated": await account("appropriated", "拨入", Side.credit, False),
        "paid": await account("paid", "已支付", Side.debit, False),
        "reversed": await account("reversed", "追回", Side.credit, False),
    }
    pool = FundPool(
        district_code=district_code,
        source=source,
        **{f"{part}_account_id": acc.id for part, acc in accounts.items()},  # type: ignore[arg-type]
    )
    savepoint = await session.begin_nested()
    session.add(pool)
    try:
        await session.flush()
    except Exception:
        await savepoint.rollback()
        again = await find_pool(session, district_code, source)
        if again is None:
            raise
        return again
    await savepoint.commit()
    return pool


async def find_pool(session: AsyncSession, district_code: str, source: str) -> FundPool | None:
    return (
        await session.execute(
            select(FundPool).where(
                col(FundPool.district_code) == district_code, col(FundPool.source) == source
            )
        )
    ).scalar_one_or_none()


@dataclass(frozen=True)
class PoolBalances:
    available_fen: int
    reserved_fen: int

    @property
    def balance_fen(self) -> int:
        return self.available_fen + self.reserved_fen


async def balances(session: AsyncSession, pool: FundPool) -> PoolBalances:
    rows = (
        await session.execute(
            select(col(LedgerAccount.id), col(LedgerAccount.balance_fen)).where(
                col(LedgerAccount.id).in_([pool.available_account_id, pool.reserved_account_id])
            )
        )
    ).all()
    by_id = {int(r[0] or 0): int(r[1]) for r in rows}
    return PoolBalances(by_id[pool.available_account_id], by_id[pool.reserved_account_id])


async def to_public(session: AsyncSession, pool: FundPool) -> PoolPublic:
    assert pool.id is not None
    b = await balances(session, pool)
    return PoolPublic(
        id=pool.id,
        district_code=pool.district_code,
        source=pool.source,
        source_label=funding_label(pool.source),
        balance_fen=b.balance_fen,
        reserved_fen=b.reserved_fen,
        available_fen=b.available_fen,
    )


async def list_pools(session: AsyncSession, actor: Actor) -> list[FundPool]:
    require(actor, "ledger.view")
    rows = await session.execute(
        select(FundPool)
        .where(col(FundPool.district_code).startswith(actor.region_code))
        .order_by(col(FundPool.district_code), col(FundPool.source))
    )
    return list(rows.scalars())


async def get_pool(session: AsyncSession, actor: Actor, pool_id: int, action: str) -> FundPool:
    pool = await session.get(FundPool, pool_id)
    if pool is None or not in_scope(actor, pool.district_code):
        # A pool outside the caller's region does not exist for them.
        require(actor, action)
        raise NotFound("资金池不存在", field="pool_id")
    require(actor, action, region_code=pool.district_code)
    return pool


async def _post_appropriation(session: AsyncSession, pool: FundPool, a: Appropriation) -> None:
    assert a.id is not None
    entry = await ledger.post(
        session,
        key=f"appropriation:{a.id}",
        ledger=Ledger.subsidy,
        kind="appropriation",
        lines=[
            ledger.Line(pool.available_account_id, Side.debit, a.amount_fen),
            ledger.Line(pool.appropriated_account_id, Side.credit, a.amount_fen),
        ],
        memo=f"拨款 {a.document_no}",
        created_by=a.approved_by or a.requested_by,
    )
    a.entry_id = entry.id
    a.status = RequestStatus.posted
    a.decided_at = utcnow()
    session.add(a)
    await session.flush()
    # Money arrived: subsidies waiting for funds are reserved in order of approval.
    from billing import subsidies

    await subsidies.reserve_waiting(session, pool)


async def appropriate(
    session: AsyncSession,
    *,
    actor: Actor,
    pool_id: int,
    data: AppropriationIn,
    key: str | None,
    config: BillingConfig,
) -> Appropriation:
    key = check_key(key)
    pool = await get_pool(session, actor, pool_id, "fund.appropriate")
    digest = _request_hash({"pool": pool_id, **data.model_dump()})
    existing = (
        await session.execute(
            select(Appropriation).where(
                col(Appropriation.idempotency_key) == f"{actor.user_id}:{key}"
            )
        )
    ).scalar_one_or_none()
    if existing is not None:
        if existing.request_hash != digest:
            raise Conflict("Idempotency-Key 已用于另一笔内容不同的拨款", field="Idempotency-Key")
        return existing
    if data.date > local(utcnow()).date():  # today in Chongqing, not in UTC
        raise Invalid("date", "拨款日期不能晚于今天")
    a = Appropriation(
        pool_id=pool_id,
        amount_fen=data.amount_fen,
        document_no=data.document_no.strip(),
        document_date=data.date,
        note=data.note,
        status=RequestStatus.pending,
        idempotency_key=f"{actor.user_id}:{key}",
        request_hash=digest,
        requested_by=actor.user_id,
    )
    session.add(a)
    await session.flush()
    needs_second = data.amount_fen > config.approval_threshold_fen
    if not needs_second:
        await _post_appropriation(session, pool, a)
    await audit.record(
        session=session,
        actor=actor,
        action="fund.appropriate" if not needs_second else "fund.appropriate_request",
        object_type="fund_appropriation",
        object_id=a.id,
        region_code=pool.district_code,
        detail={"amount_fen": a.amount_fen, "document_no": a.document_no, "status": a.status},
    )
    return a


def _second_user(actor: Actor, requested_by: int | None) -> None:
    if actor.user_id is not None and actor.user_id == requested_by:
        raise Forbidden("需由另一位财务人员审核：不能审核自己提交的申请", field="approved_by")


async def approve_appropriation(
    session: AsyncSession, *, actor: Actor, appropriation_id: int, reject: bool = False
) -> Appropriation:
    a = await session.get(Appropriation, appropriation_id)
    if a is None:
        raise NotFound("拨款申请不存在", field="appropriation_id")
    pool = await get_pool(session, actor, a.pool_id, "fund.approve")
    if a.status != RequestStatus.pending:
        if a.status == (RequestStatus.rejected if reject else RequestStatus.posted):
            return a  # the same decision again
        raise Conflict("该拨款申请已处理", field="status")
    _second_user(actor, a.requested_by)
    a.approved_by = actor.user_id
    if reject:
        a.status = RequestStatus.rejected
        a.decided_at = utcnow()
        session.add(a)
        await session.flush()
    else:
        await _post_appropriation(session, pool, a)
    await audit.record(
        session=session,
        actor=actor,
        action="fund.reject" if reject else "fund.approve",
        object_type="fund_appropriation",
        object_id=a.id,
        region_code=pool.district_code,
        detail={"amount_fen": a.amount_fen},
    )
    return a


async def request_transfer(
    session: AsyncSession, *, actor: Actor, pool_id: int, data: TransferIn, key: str | None
) -> PoolTransfer:
    key = check_key(key)
    source = await get_pool(session, actor, pool_id, "fund.appropriate")
    target = await get_pool(session, actor, data.to_pool_id, "fund.appropriate")
    if source.id == target.id:
        raise Invalid("to_pool_id", "调出和调入不能是同一个资金池")
    digest = _request_hash({"pool": pool_id, **data.model_dump()})
    full_key = f"{actor.user_id}:{key}"
    existing = (
        await session.execute(
            select(PoolTransfer).where(col(PoolTransfer.idempotency_key) == full_key)
        )
    ).scalar_one_or_none()
    if existing is not None:
        if existing.request_hash != digest:
            raise Conflict("Idempotency-Key 已用于另一笔内容不同的调剂", field="Idempotency-Key")
        return existing
    # Checked again at approval: money may leave the pool in between.
    await _enough_available(session, source, data.amount_fen, lock=False)
    t = PoolTransfer(
        from_pool_id=pool_id,
        to_pool_id=data.to_pool_id,
        amount_fen=data.amount_fen,
        document_no=data.document_no.strip(),
        note=data.note,
        idempotency_key=full_key,
        request_hash=digest,
        requested_by=actor.user_id,
    )
    session.add(t)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="fund.transfer_request",
        object_type="fund_transfer",
        object_id=t.id,
        region_code=source.district_code,
        detail={"amount_fen": t.amount_fen, "to_pool_id": t.to_pool_id},
    )
    return t


async def approve_transfer(
    session: AsyncSession, *, actor: Actor, transfer_id: int, reject: bool = False
) -> PoolTransfer:
    t = await session.get(PoolTransfer, transfer_id)
    if t is None:
        raise NotFound("调剂申请不存在", field="transfer_id")
    source = await get_pool(session, actor, t.from_pool_id, "fund.approve")
    target = await get_pool(session, actor, t.to_pool_id, "fund.approve")
    if t.status != RequestStatus.pending:
        if t.status == (RequestStatus.rejected if reject else RequestStatus.posted):
            return t
        raise Conflict("该调剂申请已处理", field="status")
    _second_user(actor, t.requested_by)
    if not reject:
        await _enough_available(session, source, t.amount_fen, lock=True)
    t.approved_by = actor.user_id
    t.decided_at = utcnow()
    if reject:
        t.status = RequestStatus.rejected
    else:
        entry = await ledger.post(
            session,
            key=f"transfer:{t.id}",
            ledger=Ledger.subsidy,
            kind="transfer",
            lines=[
                ledger.Line(source.appropriated_account_id, Side.debit, t.amount_fen),
                ledger.Line(source.available_account_id, Side.credit, t.amount_fen),
                ledger.Line(target.available_account_id, Side.debit, t.amount_fen),
                ledger.Line(target.appropriated_account_id, Side.credit, t.amount_fen),
            ],
            memo=f"调剂 {t.document_no}",
            created_by=actor.user_id,
        )
        t.entry_id = entry.id
        t.status = RequestStatus.posted
    session.add(t)
    await session.flush()
    if not reject:
        from billing import subsidies

        await subsidies.reserve_waiting(session, target)
    await audit.record(
        session=session,
        actor=actor,
        action="fund.transfer_reject" if reject else "fund.transfer_approve",
        object_type="fund_transfer",
        object_id=t.id,
        region_code=source.district_code,
        detail={"amount_fen": t.amount_fen},
    )
    return t


async def _enough_available(
    session: AsyncSession, pool: FundPool, amount_fen: int, *, lock: bool
) -> None:
    """A transfer takes only what is neither spent nor reserved for subsidies; the
    database would refuse an overdraft anyway, this says why in words."""
    if lock:
        available = (await ledger.lock_accounts(session, [pool.available_account_id]))[
            pool.available_account_id
        ]
    else:
        available = (await balances(session, pool)).available_fen
    if available < amount_fen:
        raise Conflict(
            f"调出资金池可用余额不足：可用 {yuan_text(available)}，"
            f"调剂 {yuan_text(amount_fen)}（已预留给补贴的资金不能调出）",
            field="amount_fen",
        )
