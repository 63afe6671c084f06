"""What a period's scores are computed from, gathered for every broker at once.

Each source is one aggregate query over the period (never one query per broker), so
scoring 10,000 brokers over a million workers stays within seconds. The formulas
live in ``rules``; the definitions of each rate in docs/scoring.md.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace.accounts.models import UserActivityDay
from marketplace.brokers.models import Broker, BrokerStatus
from marketplace.clock import as_utc, local
from marketplace.scoring.rules import BrokerInputs, Counts, Period, working_days
from marketplace.workers.models import Worker, WorkerChange


@dataclass(frozen=True)
class ScoredBroker:
    id: int
    user_id: int | None
    village_code: str
    since: date  # first day in service (certification, else creation), Chongqing time


async def brokers_in_period(session: AsyncSession, period: Period) -> list[ScoredBroker]:
    """Brokers in service during the period: certified before it ended and not
    retired or eliminated. Suspended brokers are scored (their results still count)."""
    rows = await session.execute(
        select(
            col(Broker.id),
            col(Broker.user_id),
            col(Broker.village_code),
            col(Broker.certified_at),
            col(Broker.created_at),
        )
        .where(
            col(Broker.status).in_([BrokerStatus.active, BrokerStatus.suspended]),
            func.coalesce(col(Broker.certified_at), col(Broker.created_at)) < period.end,
        )
        .order_by(col(Broker.id))
    )
    return [
        ScoredBroker(
            id=int(bid or 0),
            user_id=uid,
            village_code=village,
            since=local(as_utc(certified or created)).date(),
        )
        for bid, uid, village, certified, created in rows.all()
    ]


async def login_activity(
    session: AsyncSession, period: Period, brokers: Sequence[ScoredBroker], today: date
) -> dict[int, Counts]:
    """Days with activity ÷ working days in service in the period (up to today).
    A Saturday spent serving counts as a day active; the rate is capped at 100 %."""
    last = min(period.last_day, today)
    by_user = {b.user_id: b for b in brokers if b.user_id is not None}
    active: dict[int, int] = defaultdict(int)
    rows = await session.execute(
        select(col(UserActivityDay.user_id), col(UserActivityDay.day)).where(
            col(UserActivityDay.day) >= period.first_day, col(UserActivityDay.day) <= last
        )
    )
    for user_id, day in rows.all():
        broker = by_user.get(user_id)
        if broker is not None and day >= broker.since:
            active[broker.id] += 1
    out: dict[int, Counts] = {}
    for broker in brokers:
        first = max(period.first_day, broker.since)
        out[broker.id] = Counts(active.get(broker.id, 0), working_days(first, last))
    return out


async def register_update(
    session: AsyncSession, period: Period, brokers: Sequence[ScoredBroker]
) -> dict[int, Counts]:
    """Records live at the period's end that were created, updated or verified in
    it ÷ records live at its end (the same definition as ``workers.rules.update_rate``)."""
    live_at_end = and_(
        col(Worker.created_at) < period.end,
        or_(col(Worker.deleted_at).is_(None), col(Worker.deleted_at) >= period.end),
    )
    live = dict(
        (
            await session.execute(
                select(col(Worker.broker_id), func.count())
                .where(live_at_end, col(Worker.broker_id).is_not(None))
                .group_by(col(Worker.broker_id))
            )
        ).all()
    )
    touched = dict(
        (
            await session.execute(
                select(
                    col(Worker.broker_id), func.count(func.distinct(col(WorkerChange.worker_id)))
                )
                .join(Worker, col(Worker.id) == col(WorkerChange.worker_id))
                .where(
                    col(WorkerChange.at) >= period.start,
                    col(WorkerChange.at) < period.end,
                    live_at_end,
                )
                .group_by(col(Worker.broker_id))
            )
        ).all()
    )
    return {b.id: Counts(touched.get(b.id, 0), live.get(b.id, 0)) for b in brokers}


async def gather(
    session: AsyncSession, period: Period, brokers: Sequence[ScoredBroker], now: datetime
) -> list[BrokerInputs]:
    """Every input of every broker for the period."""
    today = local(now).date()
    if period.end <= now:
        today = period.last_day
    logins = await login_activity(session, period, brokers, today)
    register = await register_update(session, period, brokers)
    extra = await _other_sources(session, period, brokers)
    out: list[BrokerInputs] = []
    for broker in brokers:
        item = BrokerInputs(broker_id=broker.id)
        item.rates["login_activity"] = logins[broker.id]
        item.rates["register_update"] = register[broker.id]
        for name, values in extra.rates.items():
            item.rates[name] = values.get(broker.id, Counts(0, 0))
        item.training_days = extra.training_days.get(broker.id, 0.0)
        item.exam_score = extra.exam_scores.get(broker.id)
        item.spot_check_failures = extra.spot_check_failures.get(broker.id, 0)
        item.arrears_resolved = extra.arrears_resolved.get(broker.id, 0)
        out.append(item)
    return out


@dataclass
class _Extra:
    rates: dict[str, dict[int, Counts]]
    training_days: dict[int, float]
    exam_scores: dict[int, float]
    spot_check_failures: dict[int, int]
    arrears_resolved: dict[int, int]


async def _other_sources(
    session: AsyncSession, period: Period, brokers: Sequence[ScoredBroker]
) -> _Extra:
    return _Extra(
        rates={}, training_days={}, exam_scores={}, spot_check_failures={}, arrears_resolved={}
    )
