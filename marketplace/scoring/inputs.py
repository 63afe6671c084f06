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
from marketplace.brokers import training
from marketplace.brokers.exams_models import ExamAttempt
from marketplace.brokers.models import Broker, BrokerApplication, BrokerStatus
from marketplace.clock import as_utc, local, utcnow
from marketplace.placements import rate as match_rates
from marketplace.placements.models import ArrearsCase, ArrearsStatus, Recommendation
from marketplace.scoring.rules import BrokerInputs, Counts, Period, working_days
from marketplace.tasks import rules as task_rules
from marketplace.tasks.models import (
    ServiceTask,
    SpotCheck,
    SpotCheckItem,
    SubmissionStatus,
    TaskStatus,
    TaskSubmission,
)
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
    ids = [b.id for b in brokers]
    return _Extra(
        rates={
            "task_completion": await task_completion(session, period, ids),
            "job_match": await job_match(session, period),
        },
        training_days=await training_days(session, period),
        exam_scores=await exam_scores(session, period),
        spot_check_failures=await spot_check_failures(session, period),
        arrears_resolved=await arrears_resolved(session, period),
    )


async def task_completion(
    session: AsyncSession, period: Period, broker_ids: Sequence[int]
) -> dict[int, Counts]:
    """Tasks due in the period, completed and approved by their deadline ÷ tasks
    claimed or assigned (``tasks.rules.completion``, edge cases in docs/tasks.md)."""
    rows = (
        await session.execute(
            select(
                col(ServiceTask.id),
                col(ServiceTask.broker_id),
                col(ServiceTask.deadline),
                col(ServiceTask.status),
                col(ServiceTask.reversed_at),
            ).where(col(ServiceTask.period) == str(period), col(ServiceTask.broker_id).is_not(None))
        )
    ).all()
    approved: dict[int, datetime] = {}
    done = (
        await session.execute(
            select(col(TaskSubmission.task_id), col(TaskSubmission.submitted_at))
            .join(ServiceTask, col(ServiceTask.id) == col(TaskSubmission.task_id))
            .where(
                col(ServiceTask.period) == str(period),
                col(TaskSubmission.status).in_(
                    [SubmissionStatus.approved, SubmissionStatus.partly_approved]
                ),
            )
        )
    ).all()
    for task_id, submitted_at in done:
        approved[int(task_id)] = submitted_at
    outcomes: dict[int, list[task_rules.TaskOutcome]] = defaultdict(list)
    for tid, bid, deadline, status, reversed_at in rows:
        outcomes[int(bid or 0)].append(
            task_rules.TaskOutcome(
                deadline=deadline,
                approved_submitted_at=approved.get(int(tid or 0)),
                reversed=reversed_at is not None,
                awaiting_review=status in (TaskStatus.submitted, TaskStatus.township_checked),
            )
        )
    as_of = min(utcnow(), period.end)
    out: dict[int, Counts] = {}
    for broker_id in broker_ids:
        rate = task_rules.completion(outcomes.get(broker_id, []), as_of)
        out[broker_id] = Counts(rate.completed, rate.counted)
    return out


async def job_match(session: AsyncSession, period: Period) -> dict[int, Counts]:
    """Recommendations made in the period that led to a hire ÷ recommendations made
    (``placements.rate``: the period is the cohort)."""
    rows = await session.execute(
        select(col(Recommendation.broker_id), col(Recommendation.status), func.count())
        .where(
            col(Recommendation.created_at) >= period.start,
            col(Recommendation.created_at) < period.end,
        )
        .group_by(col(Recommendation.broker_id), col(Recommendation.status))
    )
    made: dict[int, int] = defaultdict(int)
    hired: dict[int, int] = defaultdict(int)
    for broker_id, status, count in rows.all():
        made[int(broker_id)] += int(count)
        if status in match_rates.HIRED:
            hired[int(broker_id)] += int(count)
    return {b: Counts(hired[b], made[b]) for b in made}


async def training_days(session: AsyncSession, period: Period) -> dict[int, float]:
    """Days trained in the period's year up to its end, as a broker or, before
    certification, as an applicant (the compliance report's own count)."""
    days = await training.broker_days(session, "", period.year, until=period.last_day)
    return {broker_id: float(total) for broker_id, total in days.items()}


async def exam_scores(session: AsyncSession, period: Period) -> dict[int, float]:
    """The latest exam handed in before the period's end, by the broker or by their
    application before certification."""
    candidate = func.coalesce(col(ExamAttempt.broker_id), col(BrokerApplication.broker_id))
    rows = await session.execute(
        select(candidate, col(ExamAttempt.score), col(ExamAttempt.submitted_at))
        .outerjoin(BrokerApplication, col(BrokerApplication.id) == col(ExamAttempt.application_id))
        .where(
            col(ExamAttempt.score).is_not(None),
            col(ExamAttempt.submitted_at) < period.end,
            candidate.is_not(None),
        )
        .order_by(col(ExamAttempt.submitted_at))
    )
    latest: dict[int, float] = {}
    for broker_id, score, _ in rows.all():
        latest[int(broker_id)] = float(score or 0)  # ordered by time: the last one wins
    return latest


async def spot_check_failures(session: AsyncSession, period: Period) -> dict[int, int]:
    """Failed spot-check items of the period's draws, per broker."""
    rows = await session.execute(
        select(col(SpotCheckItem.broker_id), func.count())
        .join(SpotCheck, col(SpotCheck.id) == col(SpotCheckItem.spot_check_id))
        .where(col(SpotCheck.period) == str(period), col(SpotCheckItem.result) == "fail")
        .group_by(col(SpotCheckItem.broker_id))
    )
    return {int(b): int(n) for b, n in rows.all()}


async def arrears_resolved(session: AsyncSession, period: Period) -> dict[int, int]:
    """Arrears cases of the broker's placements resolved in the period."""
    rows = await session.execute(
        select(col(ArrearsCase.broker_id), func.count())
        .where(
            col(ArrearsCase.status) == ArrearsStatus.resolved,
            col(ArrearsCase.resolved_at) >= period.start,
            col(ArrearsCase.resolved_at) < period.end,
        )
        .group_by(col(ArrearsCase.broker_id))
    )
    return {int(b): int(n) for b, n in rows.all()}
