"""Subsidies from task events: reserve, queue for funds, void, receivable, welfare posts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from billing import pools, subsidies
from billing.models import Subsidy, SubsidyStatus
from marketplace.db import unit_of_work
from marketplace.dispatcher import drain
from marketplace.events import OutboxDelivery
from tests.billing.conftest import (
    YUZHONG,
    approved_payload,
    billing_registry,
    emit_events,
    make_broker,
    reversed_payload,
)
from tests.billing.helpers import check_ledger_invariants, finance, fund

SOURCE = "employment_subsidy"


async def _subsidies(factory: async_sessionmaker[AsyncSession]) -> list[Subsidy]:
    async with factory() as session:
        return list((await session.execute(select(Subsidy).order_by(col(Subsidy.id)))).scalars())


async def _pool_view(factory: async_sessionmaker[AsyncSession]) -> pools.PoolPublic:
    async with factory() as session:
        pool = await pools.find_pool(session, YUZHONG, SOURCE)
        assert pool is not None
        return await pools.to_public(session, pool)


async def test_approved_task_reserves_and_waits_in_approval_order(
    factory: async_sessionmaker[AsyncSession],
) -> None:
    broker = await make_broker(factory)
    await fund(factory, YUZHONG, SOURCE, 10_000, key="a1", actor=finance())
    t0 = datetime(2026, 2, 1, tzinfo=UTC)
    first = approved_payload(broker, amount_fen=6_000, approved_at=t0)
    second = approved_payload(broker, amount_fen=6_000, approved_at=t0 + timedelta(hours=1))
    third = approved_payload(broker, amount_fen=3_000, approved_at=t0 + timedelta(hours=2))
    await emit_events(factory, *(("task.approved", p) for p in (first, second, third)))
    await drain(factory, billing_registry())
    states = [s.status for s in await _subsidies(factory)]
    # The third would fit, but it does not overtake the second.
    assert states == ["pending", "awaiting_funds", "awaiting_funds"]
    view = await _pool_view(factory)
    assert (view.available_fen, view.reserved_fen) == (4_000, 6_000)
    # Money arrives: the queue is served in approval order.
    await fund(factory, YUZHONG, SOURCE, 8_000, key="a2", actor=finance())
    states = [s.status for s in await _subsidies(factory)]
    assert states == ["pending", "pending", "pending"]
    view = await _pool_view(factory)
    assert (view.available_fen, view.reserved_fen, view.balance_fen) == (3_000, 15_000, 18_000)
    # Delivered again: nothing changes.
    await emit_events(factory, ("task.approved", first))
    await drain(factory, billing_registry())
    assert len(await _subsidies(factory)) == 3
    async with factory() as session:
        await check_ledger_invariants(session)


async def test_reversal_before_payment_releases_the_reservation(
    factory: async_sessionmaker[AsyncSession],
) -> None:
    broker = await make_broker(factory)
    await fund(factory, YUZHONG, SOURCE, 5_000, key="a1", actor=finance())
    paid_later = approved_payload(broker, amount_fen=5_000)
    waiting = approved_payload(broker, amount_fen=4_000)
    await emit_events(factory, ("task.approved", paid_later), ("task.approved", waiting))
    await drain(factory, billing_registry())
    await emit_events(factory, ("task.reversed", reversed_payload(paid_later)))
    await drain(factory, billing_registry())
    first, second = await _subsidies(factory)
    assert first.status == SubsidyStatus.voided
    assert first.release_entry_id is not None
    # The released money served the one waiting.
    assert second.status == SubsidyStatus.pending
    view = await _pool_view(factory)
    assert (view.available_fen, view.reserved_fen) == (1_000, 4_000)
    async with factory() as session:
        await check_ledger_invariants(session)


async def test_reversal_of_an_unknown_subsidy_is_retried_not_lost(
    factory: async_sessionmaker[AsyncSession],
) -> None:
    broker = await make_broker(factory)
    payload = approved_payload(broker)
    await emit_events(factory, ("task.reversed", reversed_payload(payload)))
    report = await drain(factory, billing_registry())
    assert report.failed == 1
    async with factory() as session:
        delivery = (await session.execute(select(OutboxDelivery))).scalar_one()
        assert delivery.status == "failing"


async def test_welfare_post_covers_its_task_types_and_pays_monthly(
    factory: async_sessionmaker[AsyncSession],
) -> None:
    broker = await make_broker(
        factory,
        welfare_post=True,
        welfare_post_task_types=["policy_promotion"],
        welfare_post_monthly_fen=150_000,
    )
    await fund(factory, YUZHONG, SOURCE, 1_000_000, key="a1", actor=finance())
    covered = approved_payload(broker, amount_fen=2_000, task_type="policy_promotion")
    other = approved_payload(broker, amount_fen=2_000, task_type="job_fair")
    await emit_events(factory, ("task.approved", covered), ("task.approved", other))
    await drain(factory, billing_registry())
    for _ in range(2):  # once per month however often the job runs
        async with unit_of_work(factory) as session:
            await subsidies.book_welfare_posts(session, period="2026-03")
    rows = await _subsidies(factory)
    assert [(s.kind, s.status, s.amount_fen) for s in rows] == [
        ("task", "covered", 2_000),
        ("task", "pending", 2_000),
        ("welfare_post", "pending", 150_000),
    ]
    view = await _pool_view(factory)
    assert view.reserved_fen == 152_000
    # The welfare post pay is payable at once; the task waits for the gate.
    async with unit_of_work(factory) as session:
        assert await subsidies.promote_payable(session, now=datetime.now(UTC)) == 1
    async with unit_of_work(factory) as session:
        later = datetime.now(UTC) + timedelta(days=31)
        assert await subsidies.promote_payable(session, now=later) == 1
    assert {s.status for s in await _subsidies(factory)} == {"covered", "payable"}


async def test_reconciliation_identities_hold_on_both_databases(
    factory: async_sessionmaker[AsyncSession],
) -> None:
    from billing import reconciliation
    from marketplace.access import SYSTEM

    broker = await make_broker(factory)
    await fund(factory, YUZHONG, SOURCE, 9_000, key="a1", actor=finance())
    now = datetime.now(UTC)
    kept = approved_payload(broker, amount_fen=4_000, approved_at=now)
    dropped = approved_payload(broker, amount_fen=2_500, approved_at=now)
    await emit_events(factory, ("task.approved", kept), ("task.approved", dropped))
    await drain(factory, billing_registry())
    await emit_events(factory, ("task.reversed", reversed_payload(dropped)))
    await drain(factory, billing_registry())
    async with factory() as session:
        month = await reconciliation.report(session, actor=SYSTEM, period=f"{now:%Y-%m}")
        later = await reconciliation.report(session, actor=SYSTEM, period=f"{now.year + 1}")
    line = month.lines[0]
    assert month.balanced
    assert (line.opening_fen, line.appropriations_fen, line.closing_fen) == (0, 9_000, 9_000)
    assert (line.reserved_fen, line.voided_fen, line.reserved_closing_fen) == (6_500, 2_500, 4_000)
    # A later period opens where this one closed, with nothing moving.
    after = later.lines[0]
    assert (after.opening_fen, after.closing_fen, after.reserved_opening_fen) == (
        9_000,
        9_000,
        4_000,
    )
    assert later.balanced


async def test_welfare_posts_booked_by_hand_and_by_the_duty_at_once_book_once(
    factory: async_sessionmaker[AsyncSession],
) -> None:
    """``laowu billing welfare-posts`` and the scheduled duty racing for the same
    month: each broker's month is booked once and the pool is charged once."""
    for n in range(4):
        await make_broker(
            factory, name=f"岗位{n}", welfare_post=True, welfare_post_monthly_fen=40_000
        )
    await fund(factory, YUZHONG, SOURCE, 1_000_000, key="wp", actor=finance())

    async def by_hand() -> int:
        async with unit_of_work(factory) as session:
            return await subsidies.book_welfare_posts(session, period="2026-11")

    async def by_duty() -> int:
        async with unit_of_work(factory) as session:
            done = await subsidies.book_last_month(
                session, now=datetime(2026, 12, 1, 8, tzinfo=UTC)
            )
            return done[1] if done else 0

    counts = await asyncio.gather(by_hand(), by_duty(), by_hand())
    assert sum(counts) == 4
    rows = await _subsidies(factory)
    assert len(rows) == 4
    assert {(s.period, s.status, s.amount_fen) for s in rows} == {("2026-11", "pending", 40_000)}
    assert (await _pool_view(factory)).reserved_fen == 160_000
    async with factory() as session:
        await check_ledger_invariants(session)
