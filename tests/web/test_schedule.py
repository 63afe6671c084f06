"""The periodic duties: each at most once per interval, a failure isolated, and the
monthly scoring run happening once after the month ends."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing.config import BillingConfig
from marketplace.scoring.models import ScoreRun
from marketplace.scoring.rules import Period
from web import schedule
from web.schedule import Duty, Schedule

Factory = async_sessionmaker[AsyncSession]


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
