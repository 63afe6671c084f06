"""Demo points: a few months of login activity for the demo brokers, then the
months scored with the model in force, so rankings, charts and the public page
have something true to show (``laowu demo``)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace.access import SYSTEM, Role
from marketplace.accounts.models import User, UserActivityDay
from marketplace.brokers.models import Broker, BrokerStatus
from marketplace.clock import local, utcnow
from marketplace.db import insert_ignoring_duplicates
from marketplace.scoring import service
from marketplace.scoring.rules import Period
from marketplace.workers.models import Worker, WorkerChange

MONTHS = 4


async def load(session: AsyncSession, *, seed: int, now: datetime | None = None) -> list[str]:
    """Activity for the last ``MONTHS`` months and this one; the ended months scored.
    Returns the periods scored. Idempotent: activity rows are keyed by user and day,
    and a scoring run updates the stored scores in place."""
    now = now or utcnow()
    today = local(now).date()
    current = Period(today.year, today.month)
    rng = random.Random(f"{seed}:scores")  # noqa: S311 (demo data, not secrets)
    await _accounts(session)
    brokers = (
        await session.execute(
            select(col(Broker.id), col(Broker.user_id))
            .where(col(Broker.user_id).is_not(None), col(Broker.status) == BrokerStatus.active)
            .order_by(col(Broker.id))
        )
    ).all()
    first = current.back(MONTHS).first_day
    rows = []
    habits: dict[int, float] = {}
    for broker_id, user_id in brokers:
        # Some brokers are busy every working day, some rarely log in.
        habit = rng.choice([0.95, 0.85, 0.7, 0.5, 0.25])
        habits[int(broker_id or 0)] = habit
        day = first
        while day <= today:
            if day.weekday() < 5 and rng.random() < habit:
                rows.append({"user_id": user_id, "day": day})
            day += timedelta(days=1)
    await insert_ignoring_duplicates(session, UserActivityDay, rows)
    await _verifications(session, habits, current, rng)
    scored = []
    for back in range(MONTHS, 0, -1):
        period = current.back(back)
        await service.compute(
            session=session, actor=SYSTEM, period=period, trigger="cli", now=period.end
        )
        scored.append(str(period))
    return scored


async def _accounts(session: AsyncSession) -> None:
    """Demo brokers made without an account get one that cannot log in (no password
    set): every certified broker has an account, and activity is counted by it."""
    without = (
        await session.execute(
            select(Broker).where(
                col(Broker.user_id).is_(None), col(Broker.status) == BrokerStatus.active
            )
        )
    ).scalars()
    now = utcnow()
    for broker in without:
        user = User(
            username=f"demo_broker_{broker.id}",
            display_name=broker.name,
            role=Role.broker,
            region_code=broker.village_code,
            password_hash="!",  # noqa: S106 (matches no password: a placeholder account)
            created_at=now,
            updated_at=now,
        )
        session.add(user)
        await session.flush()
        broker.user_id = user.id
        session.add(broker)
    await session.flush()


async def _verifications(
    session: AsyncSession, habits: dict[int, float], current: Period, rng: random.Random
) -> None:
    """Each month a broker verifies a share of their register with the people (a
    share that follows how active they are), as the monthly HR-database task asks."""
    if (
        await session.execute(
            select(col(WorkerChange.id)).where(col(WorkerChange.action) == "verify").limit(1)
        )
    ).first() is not None:
        return  # already there: the demo is idempotent
    workers = (
        await session.execute(
            select(col(Worker.id), col(Worker.broker_id)).where(col(Worker.deleted_at).is_(None))
        )
    ).all()
    rows = []
    latest: dict[int, datetime] = {}
    for back in range(MONTHS, -1, -1):
        period = current.back(back)
        for worker_id, broker_id in workers:
            if rng.random() < habits.get(int(broker_id or 0), 0.0) * 0.7:
                at = period.start + timedelta(days=rng.randrange(25), hours=rng.randrange(2, 10))
                if at > utcnow():
                    continue
                latest[int(worker_id or 0)] = at
                rows.append(
                    {
                        "worker_id": worker_id,
                        "origin_worker_id": worker_id,
                        "action": "verify",
                        "field": "last_verified_at",
                        "sensitive": False,
                        "old_value": None,
                        "new_value": None,
                        "actor_user_id": None,
                        "at": at,
                    }
                )
    for start in range(0, len(rows), 5000):
        await session.execute(insert(WorkerChange), rows[start : start + 5000])
    for worker_id, at in latest.items():
        await session.execute(
            update(Worker).where(col(Worker.id) == worker_id).values(last_verified_at=at)
        )
