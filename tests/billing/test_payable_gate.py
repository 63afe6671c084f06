"""The payability gate with the assessment (the server's default): a task subsidy
becomes payable once the broker's assessment for the month it was approved in is
done and passed; a failed assessment withholds it; nothing is payable before."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from billing import subsidies
from billing.config import BillingConfig
from billing.models import Subsidy, SubsidyStatus
from marketplace.access import SYSTEM
from marketplace.db import unit_of_work
from marketplace.dispatcher import drain
from marketplace.scoring import service as scoring
from marketplace.scoring.models import BrokerScore
from marketplace.scoring.rules import Period
from tests.billing.conftest import (
    YUZHONG,
    approved_payload,
    billing_registry,
    emit_events,
    make_broker,
)
from tests.billing.helpers import finance, fund

GATE = BillingConfig(payable_gate="assessment")
MARCH = Period(2026, 3)


async def _statuses(factory: async_sessionmaker[AsyncSession]) -> dict[int, str]:
    async with factory() as session:
        rows = await session.execute(select(col(Subsidy.broker_id), col(Subsidy.status)))
        return {int(b): str(s) for b, s in rows.all()}


async def test_assessment_gate(factory: async_sessionmaker[AsyncSession]) -> None:
    since = datetime(2026, 1, 5, tzinfo=UTC)
    passing = await make_broker(factory, name="甲经纪", certified_at=since)
    failing = await make_broker(factory, name="乙经纪", certified_at=since)
    await fund(factory, YUZHONG, "employment_subsidy", 100_000, key="g1", actor=finance())
    approved = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
    await emit_events(
        factory,
        ("task.approved", approved_payload(passing, approved_at=approved)),
        ("task.approved", approved_payload(failing, approved_at=approved)),
    )
    await drain(factory, billing_registry())
    later = datetime(2026, 6, 1, tzinfo=UTC)  # long past any days rule
    # Not scored yet: nothing is payable, however long it has waited.
    async with unit_of_work(factory) as session:
        assert await subsidies.promote_payable(session, now=later, config=GATE) == 0
    # March is scored; one broker passes, the other does not.
    async with unit_of_work(factory) as session:
        await scoring.compute(session=session, actor=SYSTEM, period=MARCH, now=later)
    async with unit_of_work(factory) as session:
        await session.execute(
            update(BrokerScore)
            .where(col(BrokerScore.broker_id) == passing)
            .values(passed=True, score=72.5)
        )
        await session.execute(
            update(BrokerScore).where(col(BrokerScore.broker_id) == failing).values(passed=False)
        )
    async with unit_of_work(factory) as session:
        assert await subsidies.promote_payable(session, now=later, config=GATE) == 1
    assert await _statuses(factory) == {
        passing: SubsidyStatus.payable,
        failing: SubsidyStatus.pending,  # withheld: still reserved, not payable
    }
    # The days rule, for a deployment that does not score, ignores the assessment.
    async with unit_of_work(factory) as session:
        assert await subsidies.promote_payable(session, now=later) == 1
    assert (await _statuses(factory))[failing] == SubsidyStatus.payable


async def test_pending_subsidies_are_promoted_a_page_at_a_time(
    factory: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five pending subsidies read two at a time (at Chongqing scale a month's 75,000
    were read at once): each page's payable ones move, none is missed or moved twice,
    and one approved too recently for the days rule stays pending."""
    monkeypatch.setattr(subsidies, "PROMOTE_PAGE", 2)
    since = datetime(2026, 1, 5, tzinfo=UTC)
    brokers = [
        await make_broker(factory, name=f"{n}经纪", certified_at=since) for n in "甲乙丙丁戊"
    ]
    await fund(factory, YUZHONG, "employment_subsidy", 100_000, key="p1", actor=finance())
    old, recent = datetime(2026, 3, 10, 2, 0, tzinfo=UTC), datetime(2026, 5, 25, tzinfo=UTC)
    await emit_events(
        factory,
        *(
            ("task.approved", approved_payload(b, approved_at=recent if i == 2 else old))
            for i, b in enumerate(brokers)
        ),
    )
    await drain(factory, billing_registry())
    pages: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().startswith("SELECT") and "FROM subsidy" in statement:
            pages.append(statement)

    engine = factory.kw["bind"].sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        async with unit_of_work(factory) as session:
            moved = await subsidies.promote_payable(session, now=datetime(2026, 6, 1, tzinfo=UTC))
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert moved == 4
    assert len(pages) == 4  # 2 + 2 + 1, then an empty page
    assert all("LIMIT" in statement for statement in pages)
    statuses = await _statuses(factory)
    assert [statuses[b] for b in brokers] == [
        SubsidyStatus.payable,
        SubsidyStatus.payable,
        SubsidyStatus.pending,  # 7 days after approval; the rule is 30
        SubsidyStatus.payable,
        SubsidyStatus.payable,
    ]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_the_payable_duty_reads_without_holding_the_write_lock(
    db_url: str, factory: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    """At Chongqing scale the duty reads a month's 75,000 pending subsidies; when it did
    that inside its write transaction, every write request waited for it (15–20 s on a
    saturated server). Now a writer gets in while it reads, and it still promotes."""
    from web import schedule

    broker = await make_broker(factory, name="甲经纪")
    await fund(factory, YUZHONG, "employment_subsidy", 100_000, key="w1", actor=finance())
    approved = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
    await emit_events(factory, ("task.approved", approved_payload(broker, approved_at=approved)))
    await drain(factory, billing_registry())

    path = db_url.split("///", 1)[1]
    writer_got_in: list[bool] = []
    real = subsidies.is_payable

    def is_payable_while_another_writes(*args: Any, **kwargs: Any) -> bool:
        other = sqlite3.connect(path, timeout=0.2, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            writer_got_in.append(True)
        except sqlite3.OperationalError:
            writer_got_in.append(False)
        finally:
            other.close()
        return real(*args, **kwargs)

    monkeypatch.setattr(subsidies, "is_payable", is_payable_while_another_writes)
    later = datetime(2026, 6, 1, tzinfo=UTC)
    message = await schedule.payable_subsidies(factory, later, config=BillingConfig())
    assert writer_got_in == [True]
    assert message == "1 笔补贴转为待支付"
    assert (await _statuses(factory))[broker] == SubsidyStatus.payable
