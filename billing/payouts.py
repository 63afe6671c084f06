"""Payout batches (发放批次): build per district and period, review, approve by a
second finance user, execute online (bank file) or offline (references).

Build claims every payable subsidy of the district approved up to the end of the
period (``Subsidy.batch_id``) and nets each broker's receivables per source.
Execution pays line by line; a line's ledger entries, its ``paid`` status and its
subsidies' ``paid`` status are written together, each entry under an idempotency key
of the line, so a run killed anywhere and run again pays nobody twice and misses
nobody (``execute`` skips paid lines; a caller may commit after every line).

Per line and source:  Dr pool.paid gross / Cr pool.reserved gross
                      Dr pool.available netted / Cr broker receivable netted
The bank transfer is gross − netted.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from billing.ledger import service as ledger
from billing.ledger.models import Ledger, LedgerAccount, Side
from billing.models import (
    BatchStatus,
    BrokerBankAccount,
    FundPool,
    PayoutBatch,
    PayoutLine,
    Subsidy,
    SubsidyStatus,
)
from billing.pools import check_key
from marketplace import audit
from marketplace.access import Actor, in_scope, require
from marketplace.brokers.models import Broker
from marketplace.clock import SHANGHAI, utcnow
from marketplace.crypto import DataCipher
from marketplace.errors import Conflict, Forbidden, Invalid, NotFound
from marketplace.funding import funding_label

PERIOD_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"


class BatchIn(BaseModel):
    district_code: str = Field(pattern=r"^\d{6}$")
    period: str = Field(pattern=PERIOD_PATTERN, description="YYYY-MM")


class ExecuteIn(BaseModel):
    mode: str = Field(pattern=r"^(online|offline)$")
    # offline: line id -> settlement reference (回单号); lines not named stay unpaid.
    references: dict[int, str] = Field(default_factory=dict)


class LinePublic(BaseModel):
    id: int
    broker_id: int
    broker_name: str
    gross_fen: int
    netted_fen: int
    net_fen: int
    status: str
    reference: str | None
    by_source: dict[str, int]


class BatchPublic(BaseModel):
    id: int
    district_code: str
    period: str
    status: str
    mode: str | None
    gross_fen: int
    netted_fen: int
    net_fen: int
    created_by: int | None
    approved_by: int | None
    totals_by_source: dict[str, int]
    lines: list[LinePublic] | None = None


def period_end(period: str) -> datetime:
    """The first instant after the period, Beijing time, in UTC."""
    year, month = (int(x) for x in period.split("-"))
    nxt = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=SHANGHAI)
    return nxt.astimezone(UTC)


async def _get(session: AsyncSession, actor: Actor, batch_id: int, action: str) -> PayoutBatch:
    batch = await session.get(PayoutBatch, batch_id)
    if batch is None or not in_scope(actor, batch.district_code):
        require(actor, action)
        raise NotFound("发放批次不存在", field="batch_id")
    require(actor, action, region_code=batch.district_code)
    return batch


async def build(
    session: AsyncSession, *, actor: Actor, data: BatchIn, key: str | None
) -> PayoutBatch:
    key = check_key(key)
    require(actor, "payout.build", region_code=data.district_code)
    full_key = f"{actor.user_id}:{key}"
    existing = (
        await session.execute(
            select(PayoutBatch).where(col(PayoutBatch.idempotency_key) == full_key)
        )
    ).scalar_one_or_none()
    if existing is not None:
        if (existing.district_code, existing.period) != (data.district_code, data.period):
            raise Conflict("Idempotency-Key 已用于另一个批次", field="Idempotency-Key")
        return existing
    open_batch = (
        await session.execute(
            select(col(PayoutBatch.id)).where(
                col(PayoutBatch.district_code) == data.district_code,
                col(PayoutBatch.status) != BatchStatus.executed,
            )
        )
    ).first()
    if open_batch is not None:
        raise Conflict(f"该区县还有未执行完的批次 {open_batch[0]}，请先处理", field="district_code")
    sequence = (
        await session.execute(
            select(func.coalesce(func.max(col(PayoutBatch.sequence)), 0)).where(
                col(PayoutBatch.district_code) == data.district_code,
                col(PayoutBatch.period) == data.period,
            )
        )
    ).scalar_one()
    subsidies = list(
        (
            await session.execute(
                select(Subsidy)
                .where(
                    col(Subsidy.district_code) == data.district_code,
                    col(Subsidy.status) == SubsidyStatus.payable,
                    col(Subsidy.batch_id).is_(None),
                    col(Subsidy.approved_at) < period_end(data.period),
                )
                .order_by(col(Subsidy.broker_id), col(Subsidy.id))
            )
        ).scalars()
    )
    if not subsidies:
        raise Invalid("period", "该区县在此期间没有待支付的补贴")
    batch = PayoutBatch(
        district_code=data.district_code,
        period=data.period,
        sequence=int(sequence) + 1,
        idempotency_key=full_key,
        created_by=actor.user_id,
    )
    session.add(batch)
    await session.flush()
    assert batch.id is not None
    gross: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for s in subsidies:
        gross[s.broker_id][s.source] += s.amount_fen
        s.batch_id = batch.id
        session.add(s)
    owed_by = {
        (a.broker_id, a.source): a.balance_fen
        for a in (
            await session.execute(
                select(LedgerAccount).where(
                    col(LedgerAccount.kind) == "broker_receivable",
                    col(LedgerAccount.district_code) == data.district_code,
                    col(LedgerAccount.balance_fen) > 0,
                )
            )
        ).scalars()
    }
    lines = []
    for broker_id, by_source in gross.items():
        netted = 0
        for source, amount in by_source.items():
            netted += min(owed_by.get((broker_id, source), 0), amount)
        total = sum(by_source.values())
        lines.append(
            PayoutLine(
                batch_id=batch.id,
                broker_id=broker_id,
                gross_fen=total,
                netted_fen=netted,
                net_fen=total - netted,
            )
        )
    session.add_all(lines)
    batch.gross_fen = sum(ln.gross_fen for ln in lines)
    batch.netted_fen = sum(ln.netted_fen for ln in lines)
    batch.net_fen = sum(ln.net_fen for ln in lines)
    session.add(batch)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="payout.build",
        object_type="payout_batch",
        object_id=batch.id,
        region_code=batch.district_code,
        detail={"period": batch.period, "lines": len(lines), "net_fen": batch.net_fen},
    )
    return batch


async def _receivable_balance(
    session: AsyncSession, broker_id: int, district_code: str, source: str
) -> int:
    account = await ledger.get_account(
        session, f"broker:{broker_id}:receivable:{district_code}:{source}"
    )
    return 0 if account is None else account.balance_fen


async def drop_subsidy(session: AsyncSession, batch: PayoutBatch, subsidy: Subsidy) -> None:
    """Take a subsidy out of an unexecuted batch (it was reversed); an approved batch
    goes back to review, since what was approved changed."""
    line = (
        await session.execute(
            select(PayoutLine).where(
                col(PayoutLine.batch_id) == batch.id, col(PayoutLine.broker_id) == subsidy.broker_id
            )
        )
    ).scalar_one()
    subsidy.batch_id = None
    session.add(subsidy)
    line.gross_fen -= subsidy.amount_fen
    line.netted_fen = min(line.netted_fen, line.gross_fen)
    line.net_fen = line.gross_fen - line.netted_fen
    session.add(line)
    await session.flush()
    rows = (
        await session.execute(select(PayoutLine).where(col(PayoutLine.batch_id) == batch.id))
    ).scalars()
    all_lines = list(rows)
    batch.gross_fen = sum(ln.gross_fen for ln in all_lines)
    batch.netted_fen = sum(ln.netted_fen for ln in all_lines)
    batch.net_fen = sum(ln.net_fen for ln in all_lines)
    if batch.status == BatchStatus.approved:
        batch.status = BatchStatus.draft
        batch.approved_by = None
        batch.approved_at = None
    session.add(batch)
    await session.flush()


async def approve(session: AsyncSession, *, actor: Actor, batch_id: int) -> PayoutBatch:
    batch = await _get(session, actor, batch_id, "payout.approve")
    if batch.status == BatchStatus.approved:
        return batch
    if batch.status != BatchStatus.draft:
        raise Conflict("批次已执行，不能再审核", field="status")
    if actor.user_id is not None and actor.user_id == batch.created_by:
        raise Forbidden("需由另一位财务人员审核：不能审核自己生成的批次", field="approved_by")
    batch.status = BatchStatus.approved
    batch.approved_by = actor.user_id
    batch.approved_at = utcnow()
    session.add(batch)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="payout.approve",
        object_type="payout_batch",
        object_id=batch.id,
        region_code=batch.district_code,
        detail={"net_fen": batch.net_fen},
    )
    return batch


async def lines_of(session: AsyncSession, batch_id: int) -> list[PayoutLine]:
    rows = await session.execute(
        select(PayoutLine).where(col(PayoutLine.batch_id) == batch_id).order_by(col(PayoutLine.id))
    )
    return list(rows.scalars())


async def _pay_lines(
    session: AsyncSession, batch: PayoutBatch, lines: list[PayoutLine], refs: dict[int, str]
) -> None:
    """Pay ``lines`` in a few statements: their entries (one per line and source, keyed
    by the line), the subsidies' and the lines' ``paid`` status, all in the caller's
    transaction, so they are written together or not at all."""
    if not lines:
        return
    broker_ids = [ln.broker_id for ln in lines]
    subsidies: dict[tuple[int, str], list[Subsidy]] = defaultdict(list)
    for s in (
        await session.execute(
            select(Subsidy)
            .where(col(Subsidy.batch_id) == batch.id, col(Subsidy.broker_id).in_(broker_ids))
            .order_by(col(Subsidy.id))
        )
    ).scalars():
        subsidies[(s.broker_id, s.source)].append(s)
    by_source = {
        p.source: p
        for p in (
            await session.execute(
                select(FundPool).where(col(FundPool.district_code) == batch.district_code)
            )
        ).scalars()
    }
    receivables = {
        (a.broker_id, a.source): a
        for a in (
            await session.execute(
                select(LedgerAccount).where(
                    col(LedgerAccount.kind) == "broker_receivable",
                    col(LedgerAccount.district_code) == batch.district_code,
                    col(LedgerAccount.broker_id).in_(broker_ids),
                )
            )
        ).scalars()
    }
    entries: list[ledger.NewEntry] = []
    paid_by_entry: list[list[Subsidy]] = []
    for line in lines:
        netted_left = line.netted_fen
        ref = refs[line.id or 0]
        for (broker_id, source), items in sorted(subsidies.items()):
            if broker_id != line.broker_id:
                continue
            pool = by_source[source]
            gross = sum(s.amount_fen for s in items)
            postings = [
                ledger.Line(pool.paid_account_id, Side.debit, gross),
                ledger.Line(pool.reserved_account_id, Side.credit, gross),
            ]
            account = receivables.get((broker_id, source))
            netted = min(account.balance_fen if account else 0, gross, netted_left)
            if netted > 0 and account is not None:
                postings += [
                    ledger.Line(pool.available_account_id, Side.debit, netted),
                    ledger.Line(account.id or 0, Side.credit, netted),
                ]
                netted_left -= netted
            entries.append(
                ledger.NewEntry(
                    key=f"payout:{batch.id}:{line.id}:{source}",
                    ledger=Ledger.subsidy,
                    kind="payout",
                    lines=postings,
                    memo=f"发放 批次{batch.id} 经纪人{broker_id} {ref}"[:500],
                )
            )
            paid_by_entry.append(items)
    entry_ids = await ledger.post_many(session, entries)
    now = utcnow()
    # Plain attribute changes: the unit of work sends them as one executemany each.
    for entry_id, items in zip(entry_ids, paid_by_entry, strict=True):
        for sub in items:
            sub.status = SubsidyStatus.paid
            sub.paid_at = now
            sub.pay_entry_id = entry_id
    for ln in lines:
        ln.status = "paid"
        ln.reference = refs[ln.id or 0][:128]
        ln.paid_at = now
    session.add_all([*lines, *(sub for items in paid_by_entry for sub in items)])
    await session.flush()


async def execute(
    session: AsyncSession,
    *,
    actor: Actor,
    batch_id: int,
    data: ExecuteIn,
    after_line: Callable[[], Awaitable[None]] | None = None,
    chunk: int = 200,
) -> PayoutBatch:
    """Pay every unpaid line (online) or the lines given references (offline), in
    chunks of ``chunk`` lines. ``after_line`` runs after each chunk: the CLI commits
    there, so a crash loses at most the chunk in flight (nothing of it is written),
    and a re-run continues where it stopped."""
    batch = await _get(session, actor, batch_id, "payout.execute")
    if batch.status == BatchStatus.executed:
        return batch
    if batch.status == BatchStatus.draft:
        raise Conflict("批次尚未经第二位财务人员审核", field="status")
    if batch.mode is not None and batch.mode != data.mode:
        raise Conflict(
            f"批次已按{'线上' if batch.mode == 'online' else '线下'}方式执行", field="mode"
        )
    lines = await lines_of(session, batch_id)
    if data.mode == "online":
        missing = await _missing_bank_accounts(
            session, [ln.broker_id for ln in lines if ln.net_fen > 0]
        )
        if missing:
            raise Invalid(
                "bank_account", f"{len(missing)} 位经纪人未登记银行账户：{'、'.join(missing[:10])}"
            )
    else:
        known = {ln.id for ln in lines}
        unknown = [i for i in data.references if i not in known]
        if unknown:
            raise Invalid("references", f"批次中没有明细 {unknown[0]}")
        for line_id, ref in data.references.items():
            if not ref.strip():
                raise Invalid("references", f"明细 {line_id} 的回单号不能为空")
    if batch.status == BatchStatus.approved:
        batch.status = BatchStatus.executing
        batch.mode = data.mode
        batch.executed_by = actor.user_id
        session.add(batch)
        await session.flush()
        await audit.record(
            session=session,
            actor=actor,
            action="payout.execute",
            object_type="payout_batch",
            object_id=batch.id,
            region_code=batch.district_code,
            detail={"mode": data.mode, "net_fen": batch.net_fen},
        )
        if after_line is not None:
            await after_line()
    todo: list[PayoutLine] = []
    refs: dict[int, str] = {}
    for line in lines:
        if line.status == "paid":
            continue
        if data.mode == "online":
            refs[line.id or 0] = f"BANK-{batch.id}-{line.id}"
        elif line.id in data.references:
            refs[line.id or 0] = data.references[line.id].strip()
        else:
            continue
        todo.append(line)
    for start in range(0, len(todo), chunk):
        await _pay_lines(session, batch, todo[start : start + chunk], refs)
        if after_line is not None:
            await after_line()
    if all(ln.status == "paid" for ln in await lines_of(session, batch_id)):
        batch.status = BatchStatus.executed
        batch.executed_at = utcnow()
        session.add(batch)
        await session.flush()
    return batch


async def _missing_bank_accounts(session: AsyncSession, broker_ids: list[int]) -> list[str]:
    if not broker_ids:
        return []
    have = set(
        (
            await session.execute(
                select(col(BrokerBankAccount.broker_id)).where(
                    col(BrokerBankAccount.broker_id).in_(broker_ids)
                )
            )
        ).scalars()
    )
    missing = [b for b in broker_ids if b not in have]
    names = (
        await session.execute(
            select(col(Broker.id), col(Broker.name)).where(col(Broker.id).in_(missing))
        )
    ).all()
    by_id = {int(r[0] or 0): str(r[1]) for r in names}
    return [by_id.get(b, str(b)) for b in missing]


async def review(session: AsyncSession, *, actor: Actor, batch_id: int) -> BatchPublic:
    batch = await _get(session, actor, batch_id, "ledger.view")
    lines = await lines_of(session, batch_id)
    names = dict(
        (
            await session.execute(
                select(col(Broker.id), col(Broker.name)).where(
                    col(Broker.id).in_([ln.broker_id for ln in lines])
                )
            )
        ).all()
    )
    per_line: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    rows = await session.execute(
        select(col(Subsidy.broker_id), col(Subsidy.source), func.sum(col(Subsidy.amount_fen)))
        .where(col(Subsidy.batch_id) == batch_id)
        .group_by(col(Subsidy.broker_id), col(Subsidy.source))
    )
    totals: dict[str, int] = defaultdict(int)
    for broker_id, source, amount in rows.all():
        per_line[int(broker_id)][str(source)] = int(amount)
        totals[str(source)] += int(amount)
    public = to_public(batch, dict(totals))
    public.lines = [
        LinePublic(
            id=ln.id or 0,
            broker_id=ln.broker_id,
            broker_name=str(names.get(ln.broker_id, ln.broker_id)),
            gross_fen=ln.gross_fen,
            netted_fen=ln.netted_fen,
            net_fen=ln.net_fen,
            status=ln.status,
            reference=ln.reference,
            by_source=dict(per_line[ln.broker_id]),
        )
        for ln in lines
    ]
    return public


def to_public(batch: PayoutBatch, totals: dict[str, int] | None = None) -> BatchPublic:
    assert batch.id is not None
    return BatchPublic(
        id=batch.id,
        district_code=batch.district_code,
        period=batch.period,
        status=batch.status,
        mode=batch.mode,
        gross_fen=batch.gross_fen,
        netted_fen=batch.netted_fen,
        net_fen=batch.net_fen,
        created_by=batch.created_by,
        approved_by=batch.approved_by,
        totals_by_source=totals or {},
    )


async def list_batches(
    session: AsyncSession, *, actor: Actor, limit: int, offset: int
) -> tuple[list[PayoutBatch], int]:
    require(actor, "ledger.view")
    where = [col(PayoutBatch.district_code).startswith(actor.region_code)]
    total = (
        await session.execute(select(func.count()).select_from(PayoutBatch).where(*where))
    ).scalar_one()
    rows = await session.execute(
        select(PayoutBatch)
        .where(*where)
        .order_by(col(PayoutBatch.id).desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows.scalars()), int(total)


async def bank_file(
    session: AsyncSession, *, actor: Actor, batch_id: int, cipher: DataCipher
) -> str:
    """The 代发 file of an online batch: 户名, 账号, 金额(元), 摘要. Audited: it holds
    bank account numbers in clear."""
    batch = await _get(session, actor, batch_id, "payout.execute")
    if batch.mode != "online":
        raise Conflict("只有线上执行的批次有代发文件", field="mode")
    lines = [ln for ln in await lines_of(session, batch_id) if ln.net_fen > 0]
    banks = {
        b.broker_id: b
        for b in (
            await session.execute(
                select(BrokerBankAccount).where(
                    col(BrokerBankAccount.broker_id).in_([ln.broker_id for ln in lines])
                )
            )
        ).scalars()
    }
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["户名", "账号", "金额", "摘要"])
    for ln in lines:
        bank = banks[ln.broker_id]
        number = cipher.decrypt(bank.account_no_enc, context=f"bank:{ln.broker_id}")
        writer.writerow(
            [
                bank.account_name,
                number,
                f"{ln.net_fen // 100}.{ln.net_fen % 100:02d}",
                f"{batch.period}劳务经纪人服务补贴 批次{batch.id}",
            ]
        )
    await audit.record(
        session=session,
        actor=actor,
        action="payout.bank_file",
        object_type="payout_batch",
        object_id=batch.id,
        region_code=batch.district_code,
        detail={"lines": len(lines)},
    )
    return out.getvalue()


def source_label(code: str) -> str:
    return funding_label(code)
