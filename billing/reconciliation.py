"""Reconciliation (对账) per period, district and funding source, from the ledger.

For each pool: opening (available + reserved at the start), appropriations (net of
transfers), reserved, voided, paid, reversed (owed back after payment), recovered
(netted by payouts), closing; and the identities

    closing  = opening + appropriations − paid + recovered
    reserved_closing = reserved_opening + reserved − voided − paid

from one grouped pass over the postings since the period's start: closing = the
accounts' balances minus what moved after the period, opening = closing minus what
moved inside it.

The market side (``market_side``): every Stripe payment and refund we booked in the
period against Stripe's balance transactions of the same window, matched or not.
The CSV and XLSX exports carry both sides, apart (two titled sections; two sheets).
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

from billing.ledger.models import EntryStatus, LedgerAccount, LedgerEntry, LedgerPosting, Side
from billing.models import FundPool, MarketFee
from billing.stripe import StripeClient
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
MARKET_COLUMNS = [
    ("kind", "类型"),
    ("reference", "Stripe 编号"),
    ("placement_id", "录用编号"),
    ("ours_fen", "本平台记账(分)"),
    ("stripe_fen", "Stripe 余额流水(分)"),
    ("difference_fen", "差额(分)"),
    ("result", "核对结果"),
]
MARKET_KINDS = {"payment": "服务费收款", "refund": "退款"}
MARKET_RESULTS = {
    "matched": "一致",
    "missing_here": "本平台无记录",
    "missing_in_stripe": "Stripe 无记录",
    "amount_differs": "金额不一致",
}
SUBSIDY_TITLE = "一、补贴资金（公共资金）对账"
MARKET_TITLE = "二、市场服务费（Stripe）对账"
MARKET_ABSENT = "未包含：仅市级财务和审计人员可见，且需已配置 Stripe"


def _row(line: PoolLine) -> list[object]:
    values = line.model_dump()
    return [("是" if values[k] else "否") if k == "balanced" else values[k] for k, _ in COLUMNS]


def _market_row(line: MarketLine) -> list[object]:
    return [
        MARKET_KINDS.get(line.kind, line.kind),
        line.reference,
        line.placement_id,
        line.ours_fen,
        line.stripe_fen,
        line.difference_fen,
        MARKET_RESULTS[line.result],
    ]


def _market_total(side: MarketSide) -> list[object]:
    return ["合计", "", "", side.ours_fen, side.stripe_fen, side.ours_fen - side.stripe_fen,
            f"{len(side.mismatches())} 笔不一致"]  # fmt: skip


def to_csv(rep: Report, market: MarketSide | None = None) -> bytes:
    """Two sections one under the other, each under its own title row: the subsidy
    side (public money, one row per pool) and the market side (every Stripe payment
    and refund against Stripe's balance transactions, mismatches marked), so a
    clerk opening it in Excel or WPS sees both without mixing their columns."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([SUBSIDY_TITLE, f"期间 {rep.period}", "金额单位：分"])
    writer.writerow([label for _, label in COLUMNS])
    for line in rep.lines:
        writer.writerow(_row(line))
    writer.writerow([])
    writer.writerow([MARKET_TITLE, f"期间 {rep.period}", "金额单位：分"])
    if market is None:
        writer.writerow([MARKET_ABSENT])
    else:
        writer.writerow([label for _, label in MARKET_COLUMNS])
        for mline in market.lines:
            writer.writerow(_market_row(mline))
        writer.writerow(_market_total(market))
    # A BOM so Excel opens the Chinese headers as UTF-8.
    return ("\ufeff" + out.getvalue()).encode()


def to_xlsx(rep: Report, market: MarketSide | None = None) -> bytes:
    """The subsidy side on the first sheet, the market side on the second."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = f"补贴对账 {rep.period}"
    sheet.append([label for _, label in COLUMNS])
    for line in rep.lines:
        sheet.append(_row(line))
    second = book.create_sheet(f"市场服务费 {rep.period}")
    if market is None:
        second.append([MARKET_ABSENT])
    else:
        second.append([label for _, label in MARKET_COLUMNS])
        for mline in market.lines:
            second.append(_market_row(mline))
        second.append(_market_total(market))
    for ws in (sheet, second):
        ws.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


class MarketLine(BaseModel):
    """One Stripe payment or refund: what we booked against Stripe's own record."""

    kind: str  # payment | refund
    reference: str  # the charge id (payment) or the refund id
    placement_id: int | None
    ours_fen: int | None  # refunds negative, as Stripe has them
    stripe_fen: int | None
    difference_fen: int
    result: str  # matched | missing_here | missing_in_stripe | amount_differs


class MarketSide(BaseModel):
    lines: list[MarketLine]
    ours_fen: int
    stripe_fen: int

    def mismatches(self) -> list[MarketLine]:
        return [ln for ln in self.lines if ln.result != "matched"]

    def mismatch_list(self) -> list[dict[str, object]]:
        """The differences as the JSON report lists them (``kind`` is the result)."""
        return [
            {"kind": m.result, "reference": m.reference, "ours_fen": m.ours_fen,
             "stripe_fen": m.stripe_fen}
            for m in self.mismatches()
        ]  # fmt: skip


async def market_side(
    session: AsyncSession, *, client: StripeClient, start: datetime, end: datetime
) -> MarketSide:
    """Our booked Stripe payments (by charge) and refunds (by refund id) in
    [start, end) against Stripe's balance transactions of the same window: every
    one of them, matched or not (``billing.fees.market_mismatches`` keeps only the
    differences, by the same rules)."""
    ours: dict[str, tuple[str, int | None, int]] = {}
    fees = await session.execute(
        select(
            col(MarketFee.charge_id), col(MarketFee.placement_id), col(MarketFee.amount_fen)
        ).where(
            col(MarketFee.paid_at) >= start,
            col(MarketFee.paid_at) < end,
            col(MarketFee.charge_id).is_not(None),
        )
    )
    for charge, placement, amount in fees.all():
        ours[str(charge)] = ("payment", placement, int(amount))
    refunds = await session.execute(
        select(col(LedgerEntry.idempotency_key), func.sum(col(LedgerPosting.amount_fen)))
        .join(LedgerPosting, col(LedgerPosting.entry_id) == col(LedgerEntry.id))
        .where(
            col(LedgerEntry.kind) == "market_refund",
            col(LedgerEntry.status) == EntryStatus.posted,
            col(LedgerEntry.effective_at) >= start,
            col(LedgerEntry.effective_at) < end,
            col(LedgerPosting.side) == Side.credit,
        )
        .group_by(col(LedgerEntry.idempotency_key))
    )
    booked = []
    for key, amount in refunds.all():
        # fee:<fee id>:refund:<Stripe refund id>
        parts = str(key).split(":")
        fee_id = int(parts[1]) if len(parts) == 4 and parts[1].isdigit() else None
        booked.append((parts[-1], fee_id, -int(amount)))
    placements = dict(
        (
            await session.execute(
                select(col(MarketFee.id), col(MarketFee.placement_id)).where(
                    col(MarketFee.id).in_({f for _, f, _ in booked if f is not None})
                )
            )
        ).all()
    )
    for ref, fee_id, amount in booked:
        ours[ref] = ("refund", placements.get(fee_id), amount)
    theirs: dict[str, tuple[str, int]] = {}
    async for txn in client.balance_transactions(
        created_gte=int(start.timestamp()), created_lt=int(end.timestamp())
    ):
        kind = txn.get("type")
        if kind in ("charge", "refund", "payment"):
            ref = str(txn["source"])
            before = theirs.get(ref, ("", 0))[1]
            theirs[ref] = ("refund" if kind == "refund" else "payment", before + int(txn["amount"]))
    lines = []
    for ref in sorted(set(ours) | set(theirs)):
        mine, stripe = ours.get(ref), theirs.get(ref)
        a = mine[2] if mine else None
        b = stripe[1] if stripe else None
        result = (
            "missing_here" if a is None
            else "missing_in_stripe" if b is None
            else "amount_differs" if a != b
            else "matched"
        )  # fmt: skip
        lines.append(
            MarketLine(
                kind=mine[0] if mine else stripe[0] if stripe else "payment",
                reference=ref,
                placement_id=mine[1] if mine else None,
                ours_fen=a,
                stripe_fen=b,
                difference_fen=(a or 0) - (b or 0),
                result=result,
            )
        )
    lines.sort(key=lambda ln: (ln.result == "matched", ln.kind, ln.reference))
    return MarketSide(
        lines=lines,
        ours_fen=sum(ln.ours_fen or 0 for ln in lines),
        stripe_fen=sum(ln.stripe_fen or 0 for ln in lines),
    )
