"""Concurrent claims on one pool, on SQLite and PostgreSQL: 50 subsidies worth twice
the pool arrive at once; the pool never goes below zero and exactly half reserve."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from billing import pools, subsidies
from billing.ledger import service as ledger
from billing.ledger.models import Ledger, Side
from billing.models import Subsidy
from marketplace.db import unit_of_work
from marketplace.events import OutboxEvent, emit
from tests.billing.conftest import YUZHONG, approved_payload, make_broker
from tests.billing.helpers import check_ledger_invariants, finance, fund

SOURCE = "employment_subsidy"
AMOUNT = 4_000
CLAIMS = 50
POOL = CLAIMS * AMOUNT // 2


async def test_fifty_concurrent_subsidies_worth_twice_the_pool(
    factory: async_sessionmaker[AsyncSession],
) -> None:
    broker = await make_broker(factory)
    pool = await fund(factory, YUZHONG, SOURCE, POOL, key="f", actor=finance())
    async with unit_of_work(factory) as session:
        events = [
            await emit(session, "task.approved", approved_payload(broker, amount_fen=AMOUNT))
            for _ in range(CLAIMS)
        ]
    ids = [e.id for e in events]

    async def claim(event_id: int | None) -> None:
        async with unit_of_work(factory) as session:
            event = await session.get(OutboxEvent, event_id)
            assert event is not None
            await subsidies.on_task_approved(session, event)

    await asyncio.gather(*(claim(i) for i in ids))
    async with factory() as session:
        view = await pools.to_public(session, pool)
        assert view.reserved_fen <= POOL
        assert (view.available_fen, view.reserved_fen) == (0, POOL)
        counts = dict(
            (
                await session.execute(
                    select(col(Subsidy.status), func.count()).group_by(col(Subsidy.status))
                )
            ).all()
        )
        assert counts == {"pending": CLAIMS // 2, "awaiting_funds": CLAIMS // 2}
        await check_ledger_invariants(session)


async def test_the_database_alone_stops_concurrent_overdrafts(
    factory: async_sessionmaker[AsyncSession],
) -> None:
    """Writers that skip the row lock and post straight away: the CHECK on the
    account balance still refuses every draw past zero."""
    pool = await fund(factory, YUZHONG, SOURCE, POOL, key="f", actor=finance())

    async def draw(n: int) -> bool:
        try:
            async with unit_of_work(factory) as session:
                await ledger.post(
                    session,
                    key=f"draw:{n}",
                    ledger=Ledger.subsidy,
                    kind="test_draw",
                    lines=[
                        ledger.Line(pool.reserved_account_id, Side.debit, AMOUNT),
                        ledger.Line(pool.available_account_id, Side.credit, AMOUNT),
                    ],
                )
        except ledger.Overdraft:
            return False
        return True

    results = await asyncio.gather(*(draw(n) for n in range(CLAIMS)))
    assert sum(results) == CLAIMS // 2
    async with factory() as session:
        view = await pools.to_public(session, pool)
        assert (view.available_fen, view.reserved_fen) == (0, POOL)
        await check_ledger_invariants(session)
