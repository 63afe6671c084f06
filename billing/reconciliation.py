"""Reconciliation (对账) per period, district and funding source, from the ledger.

For each pool: opening (available + reserved at the start), appropriations (net of
transfers), reserved, voided, paid, reversed (owed back after payment), recovered
(netted by payouts), closing; and the identities

    closing  = opening + appropriations − paid + recovered
    reserved_closing = reserved_opening + reserved − voided − paid

from one grouped pass over the postings since the period's start: closing = the
accounts' balances minus what moved after the period, opening = closing minus what
moved inside it.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import UTC, datetime

from openpyxl import Workbook
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from billing.ledger.models import EntryStatus, LedgerAccount, LedgerEntry, LedgerPosting
from billing.models import FundPool
from marketplace.access import Actor, require
from marketplace.clock import SHANGHAI
from marketplace.errors import Invalid
from marketplace.funding import funding_label


class PoolLine(BaseModel):
    pool_id: int
    district_code: str
    source: str
    source_label: str
    opening_fen: int
    appropriations_fen: int
    reserved_fen: int
    voided_fen: int
    paid_fen: int
    reversed_fen: int
    recovered_fen: int
    closing_fen: int
    reserved_opening_fen: int
    reserved_closing_fen: int
    balanced: bool


class Report(BaseModel):
    period: str
    start: datetime
    end: datetime
    lines: list[PoolLine]
    balanced: bool


def period_bounds(period: str) -> tuple[datetime, datetime]:
    """YYYY-MM or YYYY, Beijing time, as UTC instants [start, end)."""
    try:
        if len(period) == 7:
            year, month = int(period[:4]), int(period[5:])
            if period[4] != "-" or not 1 <= month <= 12:
                raise ValueError
            start = datetime(year, month, 1, tzinfo=SHANGHAI)
            end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=SHANGHAI)
        elif len(period) == 4:
            year = int(period)
            start, end = (
                datetime(year, 1, 1, tzinfo=SHANGHAI),
                datetime(year + 1, 1, 1, tzinfo=SHANGHAI),
            )
        else:
            raise ValueError
    except ValueError:
        raise Invalid("period", "期间应为 YYYY-MM（月）或 YYYY（年）") from None
    return start.astimezone(UTC), end.astimezone(UTC)


async def report(
    session: AsyncSession, *, actor: Actor, period: str, district_code: str | None = None
) -> Report:
    require(actor, "reconciliation.view", region_code=district_code)
    start, end = period_bounds(period)
    prefix = district_code or actor.region_code
    if not prefix.startswith(actor.region_code) and not actor.is_system:
        prefix = actor.region_code
    pool_rows = list(
        (
            await session.execute(
                select(FundPool)
                .where(col(FundPool.district_code).startswith(prefix))
                .order_by(col(FundPool.district_code), col(FundPool.source))
            )
        ).scalars()
    )
    account_ids = [
        a
        for p in pool_rows
        for a in (
            p.available_account_id,
            p.reserved_account_id,
            p.appropriated_account_id,
            p.paid_account_id,
            p.reversed_account_id,
        )
    ]
    # One pass over the postings from the start of the period on: what moved inside
    # the period, and what moved after it; closing = current balance − after,
    # opening = closing − inside. The index (account_id, effective_at) bounds the scan.
    accounts = {
        int(a or 0): (int(b), str(side))
        for a, b, side in (
            await session.execute(
                select(
                    col(LedgerAccount.id),
                    col(LedgerAccount.balance_fen),
                    col(LedgerAccount.normal_side),
                ).where(col(LedgerAccount.id).in_(account_ids))
            )
        ).all()
    }
    inside = col(LedgerPosting.effective_at) < end
    where = [
        col(LedgerPosting.account_id).in_(account_ids),
        col(LedgerPosting.effective_at) >= start,
    ]
    # Only posted entries count. PostgreSQL never commits an open one (a deferred
    # constraint trigger); on SQLite one could be left open, and only then is the
    # status filter worth its cost (a partial index answers the question).
    if not _is_pg(session) and await _any_open(session):
        where.append(col(LedgerEntry.status) == EntryStatus.posted)
    rows = await session.execute(
        select(
            col(LedgerPosting.account_id),
            col(LedgerEntry.kind),
            col(LedgerPosting.side),
            inside,
            func.sum(col(LedgerPosting.amount_fen)),
        )
        .join(LedgerEntry, col(LedgerEntry.id) == col(LedgerPosting.entry_id))
        .where(*where)
        .group_by(
            col(LedgerPosting.account_id), col(LedgerEntry.kind), col(LedgerPosting.side), inside
        )
    )
    moves: dict[tuple[int, str, str], int] = defaultdict(int)
    after: dict[int, int] = defaultdict(int)
    during: dict[int, int] = defaultdict(int)
    for account_id, kind, side, is_inside, amount in rows.all():
        account_id, amount = int(account_id), int(amount)
        signed = amount if side == accounts[account_id][1] else -amount
        if is_inside:
            moves[(account_id, str(kind), str(side))] += amount
            during[account_id] += signed
        else:
            after[account_id] += signed
    closing = {a: bal - after[a] for a, (bal, _) in accounts.items()}
    opening = {a: closing[a] - during[a] for a in accounts}

    def mv(account: int, kind: str, side: str) -> int:
        return moves[(account, kind, side)]

    lines = []
    for p in pool_rows:
        assert p.id is not None
        av, rs, ap = p.available_account_id, p.reserved_account_id, p.appropriated_account_id
        open_total = opening.get(av, 0) + opening.get(rs, 0)
        close_total = closing.get(av, 0) + closing.get(rs, 0)
        appropriations = sum(
            mv(ap, k, "credit") - mv(ap, k, "debit") for k in ("appropriation", "transfer")
        )
        reserved = mv(rs, "subsidy_reserve", "debit")
        voided = mv(rs, "subsidy_release", "credit")
        paid = mv(p.paid_account_id, "payout", "debit")
        recovered = mv(av, "payout", "debit")
        reversed_ = mv(p.reversed_account_id, "subsidy_receivable", "credit")
        ok = (
            close_total == open_total + appropriations - paid + recovered
            and closing.get(rs, 0) == opening.get(rs, 0) + reserved - voided - paid
        )
        lines.append(
            PoolLine(
                pool_id=p.id,
                district_code=p.district_code,
                source=p.source,
                source_label=funding_label(p.source),
                opening_fen=open_total,
                appropriations_fen=appropriations,
                reserved_fen=reserved,
                voided_fen=voided,
                paid_fen=paid,
                reversed_fen=reversed_,
                recovered_fen=recovered,
                closing_fen=close_total,
                reserved_opening_fen=opening.get(rs, 0),
                reserved_closing_fen=closing.get(rs, 0),
                balanced=ok,
            )
        )
    return Report(
        period=period, start=start, end=end, lines=lines, balanced=all(ln.balanced for ln in lines)
    )


def _is_pg(session: AsyncSession) -> bool:
    return session.bind is not None and session.bind.dialect.name == "postgresql"


async def _any_open(session: AsyncSession) -> bool:
    found = await session.execute(
        select(col(LedgerEntry.id)).where(col(LedgerEntry.status) == EntryStatus.open).limit(1)
    )
    return found.first() is not None


COLUMNS = [
    ("district_code", "区县代码"),
    ("source_label", "资金来源"),
    ("opening_fen", "期初余额(分)"),
    ("appropriations_fen", "拨入(分)"),
    ("reserved_fen", "预留(分)"),
    ("voided_fen", "作废释放(分)"),
    ("paid_fen", "支付(分)"),
    ("reversed_fen", "支付后追回应收(分)"),
    ("recovered_fen", "冲抵收回(分)"),
    ("closing_fen", "期末余额(分)"),
    ("balanced", "勾稽平衡"),
]


def _row(line: PoolLine) -> list[object]:
    values = line.model_dump()
    return [("是" if values[k] else "否") if k == "balanced" else values[k] for k, _ in COLUMNS]


def to_csv(rep: Report) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([label for _, label in COLUMNS])
    for line in rep.lines:
        writer.writerow(_row(line))
    # A BOM so Excel opens the Chinese headers as UTF-8.
    return ("\ufeff" + out.getvalue()).encode()


def to_xlsx(rep: Report) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = f"对账 {rep.period}"
    sheet.append([label for _, label in COLUMNS])
    for line in rep.lines:
        sheet.append(_row(line))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
