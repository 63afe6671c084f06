"""Fund pools: transfers take only available money (checked when asked and when
approved), a second finance user decides, and appropriation dates are Chongqing's."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing import pool_views, pools
from billing.models import RequestStatus
from marketplace.db import unit_of_work
from marketplace.dispatcher import drain
from marketplace.errors import Conflict, Invalid
from tests.billing.conftest import (
    YUZHONG,
    approved_payload,
    billing_registry,
    emit_events,
    make_broker,
)
from tests.billing.helpers import CONFIG, check_ledger_invariants, finance, fund

EMPLOYMENT, MIGRANT = "employment_subsidy", "migrant_worker_services"


async def test_a_transfer_takes_only_available_money_and_needs_a_second_user(
    factory: async_sessionmaker[AsyncSession],
) -> None:
    maker, checker = finance(None), finance(None)
    source = await fund(factory, YUZHONG, EMPLOYMENT, 100_000, key="f1", actor=maker)
    async with unit_of_work(factory) as session:
        target = await pools.ensure_pool(session, YUZHONG, MIGRANT)
    assert source.id is not None
    assert target.id is not None
    # ¥600 of the ¥1,000 is reserved for a subsidy: only ¥400 can move.
    broker = await make_broker(factory)
    await emit_events(factory, ("task.approved", approved_payload(broker, amount_fen=60_000)))
    await drain(factory, billing_registry())

    def ask(amount: int, key: str) -> pools.TransferIn:
        return pools.TransferIn(to_pool_id=target.id or 0, amount_fen=amount, document_no=key)

    async with unit_of_work(factory) as session:
        with pytest.raises(Conflict, match=r"可用余额不足：可用 ¥400\.00，调剂 ¥500\.00"):
            await pools.request_transfer(
                session, actor=maker, pool_id=source.id, data=ask(50_000, "t0"), key="t0"
            )
    async with unit_of_work(factory) as session:
        first = await pools.request_transfer(
            session, actor=maker, pool_id=source.id, data=ask(30_000, "t1"), key="t1"
        )
        second = await pools.request_transfer(
            session, actor=maker, pool_id=source.id, data=ask(30_000, "t2"), key="t2"
        )
    assert first.id is not None
    assert second.id is not None
    async with unit_of_work(factory) as session:
        pending, _ = await pool_views.describe_requests(session, checker, config=CONFIG)
        assert [(r.kind, r.id, r.pool_label, r.to_label) for r in pending] == [
            ("transfer", first.id, "渝中区·就业补助资金", "渝中区·进城务工农民综合服务经费"),
            ("transfer", second.id, "渝中区·就业补助资金", "渝中区·进城务工农民综合服务经费"),
        ]
    async with unit_of_work(factory) as session:
        await pools.approve_transfer(session, actor=checker, transfer_id=first.id)
    async with unit_of_work(factory) as session:
        # ¥100 left: the second no longer fits, and nothing of it is written.
        with pytest.raises(Conflict, match=r"可用 ¥100\.00，调剂 ¥300\.00"):
            await pools.approve_transfer(session, actor=checker, transfer_id=second.id)
    async with unit_of_work(factory) as session:
        refused = await pools.approve_transfer(
            session, actor=checker, transfer_id=second.id, reject=True
        )
        assert refused.status == RequestStatus.rejected
        pending, decided = await pool_views.describe_requests(session, checker, config=CONFIG)
        assert pending == []
        assert [(r.id, r.status) for r in decided] == [
            (second.id, "rejected"),
            (first.id, "posted"),
        ]
        src = await pools.balances(session, source)
        dst = await pools.balances(session, target)
        assert (src.available_fen, src.reserved_fen, dst.available_fen) == (10_000, 60_000, 30_000)
        await check_ledger_invariants(session)


async def test_an_appropriation_is_dated_by_the_day_in_chongqing(
    factory: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 01:00 on 2 March in Chongqing it is still 1 March in UTC: a document dated
    today was refused as "later than today"."""
    monkeypatch.setattr(pools, "utcnow", lambda: datetime(2026, 3, 1, 17, tzinfo=UTC))
    async with unit_of_work(factory) as session:
        pool = await pools.ensure_pool(session, YUZHONG, EMPLOYMENT)
        assert pool.id is not None

        def on(day: date) -> pools.AppropriationIn:
            return pools.AppropriationIn(amount_fen=100, document_no="渝财社〔2026〕5号", date=day)

        made = await pools.appropriate(
            session, actor=finance(None), pool_id=pool.id, data=on(date(2026, 3, 2)),
            key="today", config=CONFIG,
        )  # fmt: skip
        assert made.status == RequestStatus.posted
        with pytest.raises(Invalid, match="不能晚于今天"):
            await pools.appropriate(
                session, actor=finance(None), pool_id=pool.id, data=on(date(2026, 3, 3)),
                key="tomorrow", config=CONFIG,
            )  # fmt: skip
