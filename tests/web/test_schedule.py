"""The periodic duties: each at most once per interval, a failure isolated, the
monthly scoring run and the welfare-post booking happening once after the month ends."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import event, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlmodel import col

from billing import pools, subsidies
from billing.config import BillingConfig
from billing.models import Subsidy, WelfarePostRun
from marketplace.brokers.models import Broker
from marketplace.db import unit_of_work
from marketplace.scoring.models import ScoreRun
from marketplace.scoring.rules import Period
from tests.billing.conftest import WUXI, YUZHONG, make_broker
from tests.billing.helpers import check_ledger_invariants, finance, fund
from tests.marketplace.test_sqlite_driver import _add_which_thread
from web import app as web_app
from web import schedule
from web.schedule import Duty, Schedule
from web.settings import Settings

Factory = async_sessionmaker[AsyncSession]
SOURCE = "employment_subsidy"


async def test_duties_run_once_per_interval_and_failures_stay_contained(
    sessions: Factory,
) -> None:
    calls: list[str] = []

    async def ok(factory: Factory, now: datetime) -> str | None:
        calls.append("ok")
        return "done"

    async def broken(factory: Factory, now: datetime) -> str | None:
        calls.append("broken")
        raise RuntimeError("database restarting")

    ticker = Schedule((Duty("broken", 3600, broken), Duty("ok", 3600, ok)))
    assert await ticker.tick(sessions) == ["done"]
    assert await ticker.tick(sessions) == []  # not due again within the hour
    assert calls == ["broken", "ok"]


async def test_the_month_just_ended_is_scored_once(sessions: Factory) -> None:
    now = Period(2026, 12).start  # the first moment of December, Chongqing time
    assert await schedule.monthly_scores(sessions, now) == "2026-11 积分已计算：0 名经纪人"
    assert await schedule.monthly_scores(sessions, now) is None
    async with sessions() as session:
        runs = (await session.execute(select(func.count()).select_from(ScoreRun))).scalar_one()
    assert runs == 1


async def test_every_duty_runs_on_an_empty_database(
    sessions: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    ticker = Schedule(schedule.duties(BillingConfig(payable_gate="assessment")))
    await ticker.tick(sessions)
    assert "failed" not in caplog.text  # no duty fell over
    async with sessions() as session:
        assert (await session.execute(select(func.count()).select_from(ScoreRun))).scalar_one() == 1


async def _welfare(sessions: Factory) -> list[tuple[str, int, str, int]]:
    async with sessions() as session:
        rows = await session.execute(
            select(Subsidy)
            .where(col(Subsidy.kind) == "welfare_post")
            .order_by(col(Subsidy.period), col(Subsidy.broker_id))
        )
        return [(s.period or "", s.broker_id, s.status, s.amount_fen) for s in rows.scalars()]


async def test_welfare_posts_are_booked_once_after_the_month_ends(sessions: Factory) -> None:
    """The duty books the month just ended once; the district pool's rules hold (a
    short pool leaves the subsidy awaiting funds until money arrives), and running
    it again, by the duty or by hand, doubles nothing."""
    post = {"welfare_post": True, "welfare_post_monthly_fen": 180_000}
    yuzhong = await make_broker(sessions, YUZHONG, name="渝中岗位", **post)
    wuxi = await make_broker(sessions, WUXI, name="巫溪岗位", **post)
    plain = await make_broker(sessions, YUZHONG, name="无岗位")
    await make_broker(sessions, YUZHONG, name="已停用", status="suspended", **post)
    await fund(sessions, YUZHONG, SOURCE, 200_000, key="w1", actor=finance())

    december = Period(2026, 12).start  # the first moment of December, Chongqing time
    assert await schedule.welfare_posts(sessions, december - timedelta(seconds=1)) == (
        "2026-10 公益性岗位补贴已记入：2 名经纪人"  # still November: October is due
    )
    assert await schedule.welfare_posts(sessions, december) == (
        "2026-11 公益性岗位补贴已记入：2 名经纪人"
    )
    assert await schedule.welfare_posts(sessions, december) is None
    assert await schedule.welfare_posts(sessions, december + timedelta(days=20)) is None
    async with unit_of_work(sessions) as session:  # and by hand, as the CLI does
        assert await subsidies.book_welfare_posts(session, period="2026-11") == 0
    # 渝中 had ¥2,000 for two months of ¥1,800: October reserved, November waits;
    # 巫溪 has no pool money at all.
    assert await _welfare(sessions) == [
        ("2026-10", yuzhong, "pending", 180_000),
        ("2026-10", wuxi, "awaiting_funds", 180_000),
        ("2026-11", yuzhong, "awaiting_funds", 180_000),
        ("2026-11", wuxi, "awaiting_funds", 180_000),
    ]
    # A post given after the month was booked is not booked for that month by the duty.
    async with unit_of_work(sessions) as session:
        broker = await session.get(Broker, plain)
        assert broker is not None
        broker.welfare_post, broker.welfare_post_monthly_fen = True, 100_000
        session.add(broker)
    assert await schedule.welfare_posts(sessions, december + timedelta(days=2)) is None
    # Money arrives in 巫溪: its queue is served in order of approval.
    await fund(sessions, WUXI, SOURCE, 400_000, key="w2", actor=finance())
    assert [s[2] for s in await _welfare(sessions) if s[1] == wuxi] == ["pending", "pending"]
    # January books December for all three holders; the duty order makes them payable
    # on the same turn.
    january = Period(2027, 1).start
    assert await schedule.welfare_posts(sessions, january) == (
        "2026-12 公益性岗位补贴已记入：3 名经纪人"
    )
    assert await schedule.payable_subsidies(sessions, january, config=BillingConfig()) == (
        "3 笔补贴转为待支付"
    )
    names = [d.name for d in schedule.duties(BillingConfig())]
    assert names.index("billing.welfare_posts") < names.index("billing.payable")
    booked = await _welfare(sessions)
    assert len(booked) == 7
    assert len({(p, b) for p, b, _, _ in booked}) == 7  # once per broker and month
    async with sessions() as session:
        runs = (await session.execute(select(WelfarePostRun))).scalars().all()
        assert sorted((r.period, r.booked) for r in runs) == [
            ("2026-10", 2),
            ("2026-11", 2),
            ("2026-12", 3),
        ]
        await check_ledger_invariants(session)


async def test_two_processes_running_the_welfare_duty_at_once_book_once(
    sessions: Factory,
) -> None:
    """The server and a ``laowu worker`` may both run the duty at the same moment."""
    post = {"welfare_post": True, "welfare_post_monthly_fen": 50_000}
    for n in range(3):
        await make_broker(sessions, YUZHONG, name=f"岗位{n}", **post)
    await fund(sessions, YUZHONG, SOURCE, 1_000_000, key="w3", actor=finance())
    now = Period(2026, 12).start
    results = await asyncio.gather(*(schedule.welfare_posts(sessions, now) for _ in range(2)))
    assert sorted(results, key=str) == ["2026-11 公益性岗位补贴已记入：3 名经纪人", None]
    assert [s[2] for s in await _welfare(sessions)] == ["pending"] * 3
    async with sessions() as session:
        pool = await pools.find_pool(session, YUZHONG, SOURCE)
        assert pool is not None
        assert (await pools.balances(session, pool)).reserved_fen == 150_000
        await check_ledger_invariants(session)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_in_the_server_the_duties_run_off_the_event_loop(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite a request's statements run inline on the loop; a duty's would then
    stop the server while it ran (the month's HR-task look-up over a 3,000,000-worker
    register took seconds, and requests timed out). The in-process duties use an
    engine whose statements all run in aiosqlite's thread, off the server's loop."""
    threads: list[int] = []
    loops: list[int] = []

    async def probe(factory: Factory, now: datetime) -> str | None:
        loops.append(threading.get_ident())  # the server's event loop runs the duties
        async with factory() as session:
            for _ in range(2):  # a new connection's first statement follows its set-up
                found = await session.execute(text("SELECT which_thread()"))
                threads.append(int(found.scalar_one()))
        return None

    real_create_engine = web_app.create_engine

    def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
        engine = real_create_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _add_which_thread)
        return engine

    monkeypatch.setattr(web_app, "create_engine", create_engine)
    monkeypatch.setattr(web_app, "duties", lambda billing: (Duty("probe", 3600, probe),))
    app = web_app.create_app(dataclasses.replace(settings, outbox_in_process=True))
    async with AsyncTestClient(app=app):
        for _ in range(100):
            if len(threads) == 2:
                break
            await asyncio.sleep(0.05)
    assert len(threads) == 2, "the duty did not run"
    assert loops[0] not in threads


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_housekeeping_scans_the_register_without_the_write_lock(sessions: Factory) -> None:
    """The month's HR-task look-up reads the whole register (seconds at Chongqing
    scale): it runs in a read transaction, and only the inserts that follow take
    SQLite's write lock, so a login or a save is not kept waiting meanwhile."""
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(" ".join(statement.split()))

    engine = sessions.kw["bind"].sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        await schedule.task_housekeeping(sessions, datetime(2026, 11, 28, 9, 0, tzinfo=UTC))
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    scan = next(i for i, s in enumerate(statements) if "GROUP BY worker.hukou_village_code" in s)
    opened = [s for s in statements[:scan] if s.startswith("BEGIN")]
    assert opened[-1] == "BEGIN"  # the scan's transaction: a reader's
    assert any(s == "BEGIN IMMEDIATE" for s in statements[scan:])  # then the writer's
