"""``laowu demo``'s billing data: every subsidy state, paid batches, market fees, a
balanced ledger, and nothing added by a second run."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from billing import reconciliation
from billing.demo import demo_billing
from billing.ledger.models import LedgerPosting
from billing.models import MarketFee, PayoutBatch, Subsidy
from marketplace import demo
from marketplace.access import SYSTEM
from marketplace.crypto import DataCipher
from marketplace.db import unit_of_work
from tests.billing.helpers import check_ledger_invariants
from web.demo import load_all

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


async def test_demo_billing_covers_every_state_and_is_idempotent(
    factory: async_sessionmaker[AsyncSession], cipher: DataCipher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo, "WORKERS_PER_DISTRICT", 30)
    await load_all(factory, cipher, seed=7)
    async with factory() as session:
        states = set((await session.execute(select(col(Subsidy.status)))).scalars())
        assert states == {
            "awaiting_funds",
            "pending",
            "payable",
            "paid",
            "voided",
            "reversed",
            "covered",
        }
        batches = set((await session.execute(select(col(PayoutBatch.status)))).scalars())
        assert batches == {"executed"}
        fees = set((await session.execute(select(col(MarketFee.status)))).scalars())
        assert fees == {"succeeded"}
        await check_ledger_invariants(session)
        for period in ("2026-06", "2026-07", "2026-08", "2026-09", "2026-10", "2026-11", "2026"):
            report = await reconciliation.report(session, actor=SYSTEM, period=period)
            assert report.balanced, period
        postings = (
            await session.execute(select(func.count()).select_from(LedgerPosting))
        ).scalar_one()
    # The billing part again (the rest of the demo has its own idempotency test).
    async with unit_of_work(factory) as session:
        await demo_billing(session, cipher, seed=7, districts=tuple(d.code for d in demo.DISTRICTS))
    async with factory() as session:
        again = (
            await session.execute(select(func.count()).select_from(LedgerPosting))
        ).scalar_one()
    assert again == postings
