"""Public-service subsidies (服务补贴): from an approved task to a payable amount.

Life of a subsidy (docs/billing.md):

  task.approved → awaiting_funds (pool short; queued in approval order)
               → pending  (reserved:   Dr pool.reserved / Cr pool.available)
               → payable  (``is_payable`` says so; money stays reserved)
               → paid     (a payout batch: Dr pool.paid / Cr pool.reserved)
  task.reversed before payment → voided (the reserve entry is reversed)
  task.reversed after payment  → reversed: Dr broker receivable / Cr pool.reversed,
                                 netted by the broker's next payout
  a task type the broker's public-welfare post covers → covered (no money)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from billing import accounts
from billing.config import DEFAULT, BillingConfig
from billing.ledger import service as ledger
from billing.ledger.models import Ledger, Side
from billing.models import (
    BatchStatus,
    FundPool,
    PayoutBatch,
    Subsidy,
    SubsidyStatus,
    WelfarePostRun,
)
from billing.pools import ensure_pool
from marketplace.brokers.models import Broker, BrokerStatus
from marketplace.clock import local, utcnow
from marketplace.events import OutboxEvent
from marketplace.funding import is_funding_source
from marketplace.scoring import service as scoring
from marketplace.scoring.rules import Period
from marketplace.scoring.service import Assessment


class NotYet(RuntimeError):
    """The event cannot be applied yet; the outbox retries it later."""


def _parse_time(value: Any) -> datetime:
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("approved_at must carry a time zone")
    return parsed


def covered_by_post(broker: Broker, task_type_code: str | None) -> bool:
    return bool(broker.welfare_post and task_type_code in (broker.welfare_post_task_types or []))


def is_payable(
    subsidy: Subsidy,
    *,
    now: datetime,
    config: BillingConfig,
    assessment: Assessment | None = None,
) -> bool:
    """The payability gate. A welfare post's monthly subsidy is payable at once. A task
    subsidy, with the ``assessment`` gate: once the broker's assessment for the month
    it was approved in is done and passed (``assessment``, from scoring); a failed
    assessment withholds it. With the ``days`` gate: ``payable_after_days`` after
    approval with no failed spot check (a failed one has already voided it)."""
    if subsidy.status != SubsidyStatus.pending:
        return False
    if subsidy.kind == "welfare_post":
        return True
    if config.payable_gate == "assessment":
        return assessment is not None and assessment.passed
    return subsidy.approved_at + timedelta(days=config.payable_after_days) <= now


def assessed_period(subsidy: Subsidy) -> Period:
    """The month (Chongqing time) whose assessment decides a task subsidy."""
    day = local(subsidy.approved_at)
    return Period(day.year, day.month)


async def _reserve(session: AsyncSession, pool: FundPool, subsidy: Subsidy, now: datetime) -> None:
    entry = await ledger.post(
        session,
        key=f"subsidy:{subsidy.id}:reserve",
        ledger=Ledger.subsidy,
        kind="subsidy_reserve",
        lines=[
            ledger.Line(pool.reserved_account_id, Side.debit, subsidy.amount_fen),
            ledger.Line(pool.available_account_id, Side.credit, subsidy.amount_fen),
        ],
        memo=_memo(subsidy),
    )
    subsidy.reserve_entry_id = entry.id
    subsidy.reserved_at = now
    subsidy.status = SubsidyStatus.pending
    session.add(subsidy)


def _memo(subsidy: Subsidy) -> str:
    if subsidy.kind == "welfare_post":
        return f"公益性岗位补贴 经纪人{subsidy.broker_id} {subsidy.period}"
    return f"任务补贴 任务{subsidy.task_id} 提交{subsidy.submission_id}"


async def _place(session: AsyncSession, pool: FundPool, subsidy: Subsidy) -> None:
    """Reserve now if the pool has the money and nobody approved earlier is waiting;
    else queue as awaiting funds. Never takes the pool below zero."""
    assert pool.id is not None
    subsidy.status = SubsidyStatus.awaiting_funds
    session.add(subsidy)
    await session.flush()
    if subsidy.amount_fen == 0:
        subsidy.status = SubsidyStatus.voided
        subsidy.reason = "金额为零，无需发放"
        return
    balances = await ledger.lock_accounts(session, [pool.available_account_id])
    if await _waiting_ahead_of(session, pool.id, subsidy):
        return
    if balances[pool.available_account_id] >= subsidy.amount_fen:
        await _reserve(session, pool, subsidy, utcnow())
    await session.flush()


async def _waiting_ahead_of(session: AsyncSession, pool_id: int, subsidy: Subsidy) -> bool:
    found = (
        await session.execute(
            select(col(Subsidy.id))
            .where(
                col(Subsidy.pool_id) == pool_id,
                col(Subsidy.status) == SubsidyStatus.awaiting_funds,
                col(Subsidy.id) != subsidy.id,
                col(Subsidy.approved_at) <= subsidy.approved_at,
            )
            .limit(1)
        )
    ).first()
    return found is not None


async def reserve_waiting(session: AsyncSession, pool: FundPool) -> int:
    """Reserve queued subsidies in order of approval while the pool has the money;
    the first one that does not fit stops the queue (no overtaking)."""
    assert pool.id is not None
    balances = await ledger.lock_accounts(session, [pool.available_account_id])
    available = balances[pool.available_account_id]
    queued = (
        await session.execute(
            select(Subsidy)
            .where(
                col(Subsidy.pool_id) == pool.id,
                col(Subsidy.status) == SubsidyStatus.awaiting_funds,
            )
            .order_by(col(Subsidy.approved_at), col(Subsidy.id))
        )
    ).scalars()
    done = 0
    now = utcnow()
    for subsidy in queued:
        if subsidy.amount_fen > available:
            break
        await _reserve(session, pool, subsidy, now)
        available -= subsidy.amount_fen
        done += 1
    await session.flush()
    return done


async def on_task_approved(session: AsyncSession, event: OutboxEvent) -> None:
    await accrue(session, event.payload, event_id=event.id)


async def accrue(session: AsyncSession, p: dict[str, Any], *, event_id: int | None) -> None:
    """A task subsidy from a ``task.approved`` payload (docs/events.md), once per
    submission."""
    origin = f"task:{p['submission_id']}"
    if await _by_origin(session, origin) is not None:
        return  # delivered again: already accrued
    amount = int(p["amount_fen"])
    quantity, rate = int(p["approved_quantity"]), int(p["rate_fen"])
    if amount != quantity * rate or amount < 0:
        raise ValueError(f"amount_fen {amount} != approved_quantity × rate_fen")
    if not is_funding_source(str(p["funding_source"])):
        raise ValueError(f"unknown funding source {p['funding_source']!r}")
    broker = await session.get(Broker, int(p["broker_id"]))
    if broker is None:
        raise NotYet(f"broker {p['broker_id']} not found")
    pool = await ensure_pool(session, str(p["district_code"]), str(p["funding_source"]))
    assert pool.id is not None
    subsidy = Subsidy(
        origin_key=origin,
        kind="task",
        event_id=event_id,
        task_id=int(p["task_id"]),
        submission_id=int(p["submission_id"]),
        task_type_code=str(p["task_type_code"]),
        broker_id=broker.id or 0,
        pool_id=pool.id,
        district_code=pool.district_code,
        source=pool.source,
        quantity=quantity,
        rate_fen=rate,
        amount_fen=amount,
        status=SubsidyStatus.awaiting_funds,
        approved_at=_parse_time(p["approved_at"]),
    )
    if covered_by_post(broker, subsidy.task_type_code):
        subsidy.status = SubsidyStatus.covered
        subsidy.reason = "该任务类型已由公益性岗位补贴覆盖"
        session.add(subsidy)
        await session.flush()
        return
    await _place(session, pool, subsidy)


async def _by_origin(session: AsyncSession, origin: str) -> Subsidy | None:
    return (
        await session.execute(select(Subsidy).where(col(Subsidy.origin_key) == origin))
    ).scalar_one_or_none()


async def on_task_reversed(session: AsyncSession, event: OutboxEvent) -> None:
    await reverse_task(session, event.payload)


async def reverse_task(session: AsyncSession, p: dict[str, Any]) -> None:
    subsidy = await _by_origin(session, f"task:{p['submission_id']}")
    if subsidy is None:
        raise NotYet(f"no subsidy yet for submission {p['submission_id']}")
    await void_or_recover(session, subsidy, reason=str(p.get("reason") or "抽查未通过"))


async def void_or_recover(session: AsyncSession, subsidy: Subsidy, *, reason: str) -> None:
    """Undo a subsidy: release its reservation if unpaid, else book a receivable."""
    now = utcnow()
    status = subsidy.status
    if status in (SubsidyStatus.voided, SubsidyStatus.reversed, SubsidyStatus.covered):
        return
    pool = await session.get(FundPool, subsidy.pool_id)
    assert pool is not None
    if status in (SubsidyStatus.pending, SubsidyStatus.payable) and subsidy.batch_id is not None:
        batch = await session.get(PayoutBatch, subsidy.batch_id)
        assert batch is not None
        if batch.status in (BatchStatus.executing, BatchStatus.executed):
            raise NotYet("the subsidy is being paid; reversal waits for the batch")
        from billing import payouts

        await payouts.drop_subsidy(session, batch, subsidy)
    if status == SubsidyStatus.awaiting_funds or (
        status in (SubsidyStatus.pending, SubsidyStatus.payable)
        and subsidy.reserve_entry_id is None
    ):
        subsidy.status = SubsidyStatus.voided
    elif status in (SubsidyStatus.pending, SubsidyStatus.payable):
        assert subsidy.reserve_entry_id is not None
        entry = await ledger.reverse(
            session,
            entry_id=subsidy.reserve_entry_id,
            key=f"subsidy:{subsidy.id}:release",
            kind="subsidy_release",
            memo=f"作废 {_memo(subsidy)}",
        )
        subsidy.release_entry_id = entry.id
        subsidy.status = SubsidyStatus.voided
    elif status == SubsidyStatus.paid:
        receivable = await accounts.receivable(
            session, subsidy.broker_id, subsidy.district_code, subsidy.source
        )
        assert receivable.id is not None
        entry = await ledger.post(
            session,
            key=f"subsidy:{subsidy.id}:receivable",
            ledger=Ledger.subsidy,
            kind="subsidy_receivable",
            lines=[
                ledger.Line(receivable.id, Side.debit, subsidy.amount_fen),
                ledger.Line(pool.reversed_account_id, Side.credit, subsidy.amount_fen),
            ],
            memo=f"追回 {_memo(subsidy)}",
        )
        subsidy.receivable_entry_id = entry.id
        subsidy.status = SubsidyStatus.reversed
    subsidy.voided_at = now
    subsidy.reason = reason[:500]
    session.add(subsidy)
    await session.flush()
    if status != SubsidyStatus.paid:
        await reserve_waiting(session, pool)  # released money serves the queue


PROMOTE_PAGE = 2_000  # pending subsidies read at a time by ``payable_ids``
MARK_CHUNK = 500  # subsidies made payable a statement (bound parameters stay few)


async def payable_ids(
    session: AsyncSession, *, now: datetime, config: BillingConfig = DEFAULT
) -> list[int]:
    """The pending subsidies that the gate now allows, by id. Only reads: the
    scheduled duty runs it in a read transaction. The pending ones are read
    ``PROMOTE_PAGE`` at a time: a month's subsidies wait here until its assessment
    (about 75,000 at Chongqing scale), and read all at once they made the server
    draining the outbox 78 MiB larger every ten minutes."""
    found: list[int] = []
    results: dict[tuple[int, str], Assessment | None] = {}
    last = 0
    while True:
        page = list(
            (
                await session.execute(
                    select(Subsidy)
                    .where(col(Subsidy.status) == SubsidyStatus.pending, col(Subsidy.id) > last)
                    .order_by(col(Subsidy.id))
                    .limit(PROMOTE_PAGE)
                )
            ).scalars()
        )
        if not page:
            return found
        for subsidy in page:
            result = None
            if config.payable_gate == "assessment" and subsidy.kind != "welfare_post":
                period = assessed_period(subsidy)
                key = (subsidy.broker_id, str(period))
                if key not in results:
                    results[key] = await scoring.assessment(session, subsidy.broker_id, period)
                result = results[key]
            if is_payable(subsidy, now=now, config=config, assessment=result):
                assert subsidy.id is not None
                found.append(subsidy.id)
        last = int(page[-1].id or 0)


async def mark_payable(session: AsyncSession, ids: Sequence[int], *, now: datetime) -> int:
    """``ids`` become payable if they are still pending (one voided or reversed since
    ``payable_ids`` read it stays as it is), ``MARK_CHUNK`` a statement; returns how
    many did."""
    count = 0
    for start in range(0, len(ids), MARK_CHUNK):
        result = await session.execute(
            update(Subsidy)
            .where(
                col(Subsidy.id).in_(ids[start : start + MARK_CHUNK]),
                col(Subsidy.status) == SubsidyStatus.pending,
            )
            .values(status=SubsidyStatus.payable, payable_at=now)
        )
        count += int(getattr(result, "rowcount", 0) or 0)
    return count


async def promote_payable(
    session: AsyncSession, *, now: datetime | None = None, config: BillingConfig = DEFAULT
) -> int:
    """Move pending subsidies that the gate allows to payable, in ``session``'s
    transaction; returns how many. The scheduled duty does the same in two steps
    (``payable_ids`` in a read transaction, ``mark_payable`` in short writes), so that it
    does not hold SQLite's write lock while it reads a month's subsidies."""
    now = now or utcnow()
    return await mark_payable(session, await payable_ids(session, now=now, config=config), now=now)


async def book_welfare_posts(
    session: AsyncSession, *, period: str, source: str = "employment_subsidy"
) -> int:
    """The month's public-welfare post subsidy for every active broker holding a post
    (instead of task subsidies for the task types the post covers), from the
    district's ``source`` pool: reserved if the pool has the money, else awaiting
    funds like any subsidy. Once per broker and month, however often it runs, and
    whoever else runs it at the same time (the CLI and the scheduled duty)."""
    year, month = (int(x) for x in period.split("-"))
    if not 1 <= month <= 12:
        raise ValueError("period must be YYYY-MM")
    approved_at = datetime.fromisoformat(f"{year:04d}-{month:02d}-01T00:00:00+08:00")
    brokers = (
        await session.execute(
            select(Broker)
            .where(col(Broker.welfare_post).is_(True), col(Broker.status) == BrokerStatus.active)
            .order_by(col(Broker.id))
        )
    ).scalars()
    count = 0
    for broker in list(brokers):
        amount = broker.welfare_post_monthly_fen or 0
        origin = f"welfare:{broker.id}:{period}"
        if amount <= 0 or await _by_origin(session, origin) is not None:
            continue
        pool = await ensure_pool(session, broker.village_code[:6], source)
        assert pool.id is not None
        assert broker.id is not None
        subsidy = Subsidy(
            origin_key=origin,
            kind="welfare_post",
            period=period,
            broker_id=broker.id,
            pool_id=pool.id,
            district_code=pool.district_code,
            source=pool.source,
            quantity=1,
            rate_fen=amount,
            amount_fen=amount,
            status=SubsidyStatus.awaiting_funds,
            approved_at=approved_at,
        )
        savepoint = await session.begin_nested()
        try:
            await _place(session, pool, subsidy)
        except IntegrityError:
            # Another process booked this broker's month first (origin_key is unique).
            await savepoint.rollback()
            continue
        await savepoint.commit()
        count += 1
    return count


async def book_last_month(
    session: AsyncSession, *, now: datetime, source: str = "employment_subsidy"
) -> tuple[str, int] | None:
    """The scheduled booking: once the month has ended (Chongqing time), its welfare
    post subsidies are booked once, for the brokers holding a post then. Returns the
    month and how many were booked, or None if that month was booked already. A month
    missed, or a broker given a post afterwards, is booked by hand
    (``laowu billing welfare-posts --period``)."""
    today = local(now).date()
    period = str(Period(today.year, today.month).previous())
    if await session.get(WelfarePostRun, period) is not None:
        return None
    run = WelfarePostRun(period=period, source=source)
    savepoint = await session.begin_nested()
    session.add(run)
    try:
        await session.flush()  # a second process waits here, then finds the row
    except IntegrityError:
        await savepoint.rollback()
        return None
    await savepoint.commit()
    run.booked = await book_welfare_posts(session, period=period, source=source)
    session.add(run)
    await session.flush()
    return period, run.booked


HANDLERS = {
    "task.approved": on_task_approved,
    "task.reversed": on_task_reversed,
}
