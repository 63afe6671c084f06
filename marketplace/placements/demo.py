"""Demo recommendations and placements at every stage (``laowu demo``).

For published demo jobs, brokers of the job's district recommend consenting workers of
their villages whose occupation fits; the outcomes spread over every state, with
placements, first-wage reports and a few arrears cases. Rows are written directly
(with the events billing and the tasks issue expect), not through the services: the
demo has no logged-in actors. A second run adds nothing.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace.brokers.models import Broker
from marketplace.clock import utcnow
from marketplace.events import emit
from marketplace.jobs.models import Job, JobStatus
from marketplace.placements import candidates
from marketplace.placements.followup import one_month_after
from marketplace.placements.models import (
    ArrearsCase,
    Placement,
    Recommendation,
    RecommendationStatus,
    WageReport,
)
from marketplace.placements.service import ATTRIBUTION, placement_payload
from marketplace.workers.models import Worker

S = RecommendationStatus
# The share of demo recommendations ending in each state.
OUTCOMES = (
    (S.recommended, 0.25),
    (S.shortlisted, 0.15),
    (S.rejected, 0.15),
    (S.hired, 0.1),
    (S.onboarded, 0.2),
    (S.withdrawn, 0.07),
    (S.no_show, 0.05),
    (S.lapsed, 0.03),
)
JOBS = 120  # demo jobs that get recommendations
PER_JOB = (1, 4)


async def demo_placements(session: AsyncSession, *, seed: int) -> int:
    """Recommendations for up to ``JOBS`` published jobs; returns how many were added."""
    if (await session.execute(select(func.count()).select_from(Recommendation))).scalar_one():
        return 0
    published = select(func.count()).where(col(Job.status) == JobStatus.published)
    if not (await session.execute(published)).scalar_one():
        return 0  # no jobs demo (yet): nothing to recommend to
    await candidates.rebuild(session)  # demo workers are inserted without events
    rng = random.Random(f"{seed}:placements")  # noqa: S311  (demo data, not secrets)
    jobs = list(
        (
            await session.execute(
                select(Job)
                .where(
                    col(Job.status) == JobStatus.published, col(Job.occupation_code).is_not(None)
                )
                .order_by(col(Job.id))
                .limit(JOBS * 4)
            )
        ).scalars()
    )
    rng.shuffle(jobs)
    today = date.today()
    added = 0
    for job in jobs[:JOBS]:
        workers = list(
            (
                await session.execute(
                    select(Worker)
                    .join(
                        candidates.WorkerOccupation,
                        col(candidates.WorkerOccupation.worker_id) == col(Worker.id),
                    )
                    .where(
                        col(candidates.WorkerOccupation.occupation_key) == job.occupation_code,
                        col(candidates.WorkerOccupation.consent).is_(True),
                        col(candidates.WorkerOccupation.village_code).startswith(
                            job.work_region_code[:6]
                        ),
                    )
                    .limit(12)
                )
            ).scalars()
        )
        for worker in rng.sample(workers, min(len(workers), rng.randint(*PER_JOB))):
            await _one(session, rng, job, worker, today=today, now_days=rng.randint(1, 60))
            added += 1
    added += await _for_logins(session, rng, today=today)
    await session.flush()
    return added


async def _for_logins(session: AsyncSession, rng: random.Random, *, today: date) -> int:
    """The demo brokers who can log in get recommendations of their own workers in every
    state, so their pages show each next step."""
    brokers = (
        await session.execute(
            select(col(Broker.id)).where(col(Broker.user_id).is_not(None)).order_by(col(Broker.id))
        )
    ).scalars()
    added = 0
    for broker_id in list(brokers):
        rows = await session.execute(
            select(Worker, Job)
            .join(
                candidates.WorkerOccupation,
                col(candidates.WorkerOccupation.worker_id) == col(Worker.id),
            )
            .join(Job, col(Job.occupation_code) == col(candidates.WorkerOccupation.occupation_key))
            .where(
                col(Worker.broker_id) == broker_id,
                col(candidates.WorkerOccupation.consent).is_(True),
                col(Job.status) == JobStatus.published,
            )
            .order_by(col(Job.id), col(Worker.id))
            .limit(200)
        )
        pairs: set[tuple[int, int]] = set()
        for worker, job in rows.all():
            if len(pairs) == len(OUTCOMES):
                break
            assert worker.id is not None
            assert job.id is not None
            taken = await session.execute(
                select(func.count()).where(
                    col(Recommendation.job_id) == job.id,
                    col(Recommendation.worker_id) == worker.id,
                )
            )
            if (job.id, worker.id) in pairs or taken.scalar_one():
                continue
            status = OUTCOMES[len(pairs)][0]
            pairs.add((job.id, worker.id))
            await _one(session, rng, job, worker, today=today, now_days=10, status=status)
            added += 1
    return added


def _outcome(rng: random.Random) -> S:
    roll, total = rng.random(), 0.0
    for status, share in OUTCOMES:
        total += share
        if roll < total:
            return status
    return S.recommended


async def _one(
    session: AsyncSession,
    rng: random.Random,
    job: Job,
    worker: Worker,
    *,
    today: date,
    now_days: int,
    status: S | None = None,
) -> None:
    assert job.id is not None
    assert worker.id is not None
    status = status or _outcome(rng)
    made = utcnow() - timedelta(days=now_days)
    if status in (S.recommended, S.shortlisted):
        made = utcnow() - timedelta(days=rng.randint(0, 6))  # still inside the window
    starts = today - timedelta(days=rng.randint(0, 50))
    if status == S.hired:
        starts = today + timedelta(days=rng.randint(0, 20))
    rec = Recommendation(
        job_id=job.id,
        worker_id=worker.id,
        broker_id=worker.broker_id,
        note=rng.choice([None, "本人踏实肯干", "有相关经验，持证", "离工地近"]),
        status=status,
        attribution_until=made + ATTRIBUTION,
        starts_on=starts if status in (S.hired, S.onboarded, S.no_show) else None,
        created_at=made,
        updated_at=made + timedelta(days=1),
        decided_at=None if status in (S.recommended, S.withdrawn, S.lapsed) else made,
        hired_at=made + timedelta(days=1) if status in (S.hired, S.onboarded, S.no_show) else None,
    )
    session.add(rec)
    await session.flush()
    if status != S.onboarded:
        return
    assert rec.id is not None
    placement = Placement(
        recommendation_id=rec.id,
        job_id=job.id,
        organization_id=job.organization_id,
        broker_id=rec.broker_id,
        worker_id=worker.id,
        starts_on=starts,
        wage_min_fen=job.wage_min_fen,
        wage_max_fen=job.wage_max_fen,
        wage_unit=job.wage_unit,
        fee_fixed_fen=job.fee_fixed_fen,
        fee_share_bp=job.fee_share_bp,
    )
    session.add(placement)
    await session.flush()
    await emit(session, "placement.confirmed", placement_payload(placement))
    if one_month_after(starts) > today or rng.random() < 0.3:
        return  # not due yet, or the broker has not called yet
    paid = rng.random() > 0.2
    report = WageReport(
        placement_id=placement.id or 0,
        paid_in_full=paid,
        paid_on_time=paid and rng.random() > 0.2,
        note=None if paid else "老板说下月一起发",
    )
    session.add(report)
    await session.flush()
    if paid:
        return
    case = ArrearsCase(
        placement_id=placement.id or 0,
        wage_report_id=report.id or 0,
        organization_id=job.organization_id,
        broker_id=rec.broker_id,
        worker_id=worker.id,
        region_code=worker.hukou_village_code,
        owed_fen=rng.choice([None, 3_000_00, 4_500_00]),
    )
    session.add(case)
    await session.flush()
    await emit(
        session,
        "arrears.opened",
        {
            "case_id": case.id,
            "placement_id": case.placement_id,
            "organization_id": case.organization_id,
            "broker_id": case.broker_id,
            "region_code": case.region_code,
        },
    )
