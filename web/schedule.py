"""Periodic duties of the platform, run by whichever process drains the outbox: the
server in the embedded default, `laowu worker` at scale.

Each duty decides for itself whether there is work and is idempotent, so two
processes running it, or a restart in the middle, do no harm. ``Schedule.tick`` is
called on every turn of the outbox loop and runs each duty at most once per its
interval.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing.config import BillingConfig
from marketplace.access import SYSTEM
from marketplace.clock import utcnow
from marketplace.db import unit_of_work

log = logging.getLogger(__name__)

Factory = async_sessionmaker[AsyncSession]


async def expire_jobs(factory: Factory, now: datetime) -> str | None:
    """Jobs past their end date become expired (docs/jobs.md)."""
    from marketplace.jobs.service import expire_due, today_local

    async with unit_of_work(factory) as session:
        count = await expire_due(session, today_local())
    return f"{count} 个岗位已到期" if count else None


async def task_housekeeping(factory: Factory, now: datetime) -> str | None:
    """Tasks past their deadline expire or close; this month's HR-database-update
    tasks are generated (idempotent per period; docs/tasks.md)."""
    from marketplace.tasks import service as tasks

    swept = await tasks.sweep_all(factory, now=now)
    period = tasks.current_period(now)
    # The register scan first, in a read transaction; only the inserts take the write lock.
    async with unit_of_work(factory, write=False) as session:
        stale = await tasks.stale_villages(session=session, period=period)
    async with unit_of_work(factory) as session:
        made = await tasks.generate_hr_tasks(session=session, period=period, stale=stale)
    changed = sum(swept.values()) + int(made.get("created", 0))
    return f"任务整理：{swept}，新生成 {made.get('created', 0)} 个" if changed else None


async def monthly_scores(factory: Factory, now: datetime) -> str | None:
    """The month just ended is scored once after it ends (docs/scoring.md)."""
    from marketplace.scoring import service as scoring

    async with unit_of_work(factory) as session:
        period = await scoring.monthly_due(session, now)
        if period is None:
            return None
        result = await scoring.compute(
            session=session, actor=SYSTEM, period=period, trigger="worker", now=now
        )
    return f"{period} 积分已计算：{result.scored} 名经纪人"


async def payable_subsidies(
    factory: Factory, now: datetime, *, config: BillingConfig
) -> str | None:
    """Pending subsidies the gate now allows become payable (docs/billing.md): with
    the default gate, those whose month's assessment has passed."""
    from billing import subsidies

    # Read a month's pending subsidies and their assessments in a read transaction,
    # then write in short transactions: one long write held SQLite's write lock for
    # 2 s at Chongqing scale, and for 15–20 s while the server was saturated, so every
    # write request waited that long (docs/operations.md, "Load test").
    async with unit_of_work(factory, write=False) as session:
        ids = await subsidies.payable_ids(session, now=now, config=config)
    count = 0
    for start in range(0, len(ids), subsidies.MARK_CHUNK):
        async with unit_of_work(factory) as session:
            count += await subsidies.mark_payable(
                session, ids[start : start + subsidies.MARK_CHUNK], now=now
            )
    return f"{count} 笔补贴转为待支付" if count else None


async def welfare_posts(factory: Factory, now: datetime) -> str | None:
    """After a month ends, its public-welfare post subsidies are booked once
    (docs/billing.md): reserved from the district's pool, or awaiting funds."""
    from billing import subsidies

    async with unit_of_work(factory) as session:
        done = await subsidies.book_last_month(session, now=now)
    if done is None:
        return None
    period, count = done
    return f"{period} 公益性岗位补贴已记入：{count} 名经纪人"


@dataclass(frozen=True)
class Duty:
    name: str
    every_seconds: float
    run: Callable[[Factory, datetime], Awaitable[str | None]]


def duties(billing: BillingConfig) -> tuple[Duty, ...]:
    """Every duty, in order: scores and welfare posts before payability, so a month
    scored, or a welfare post booked, on this turn is payable on the same turn."""
    return (
        Duty("jobs.expire", 600, expire_jobs),
        Duty("tasks.housekeeping", 3600, task_housekeeping),
        Duty("scores.monthly", 600, monthly_scores),
        Duty("billing.welfare_posts", 600, welfare_posts),
        Duty("billing.payable", 600, functools.partial(payable_subsidies, config=billing)),
    )


class Schedule:
    """Runs each duty at most once per its interval; a failing duty is logged and
    retried at its next turn, and never stops the others or the outbox."""

    def __init__(self, duties: tuple[Duty, ...]) -> None:
        self.duties = duties
        self._last: dict[str, float] = {}

    async def tick(self, factory: Factory) -> list[str]:
        done: list[str] = []
        for duty in self.duties:
            last = self._last.get(duty.name)
            if last is not None and time.monotonic() - last < duty.every_seconds:
                continue
            self._last[duty.name] = time.monotonic()
            try:
                message = await duty.run(factory, utcnow())
            except Exception:
                log.exception("scheduled duty %s failed", duty.name)
                continue
            if message:
                log.info(message)
                done.append(message)
        return done
