"""Reading recommendations and placements, each reader within their reach.

A broker reads the recommendations they made; an employer or agency those made to
their organisation's jobs (with the worker's name and phone: they were recommended);
officers those of workers from their region. Anything else is absent (404).
"""

from __future__ import annotations

from datetime import date
from typing import TypeVar

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, or_

from marketplace.access import Actor, Role, require
from marketplace.brokers.models import Broker
from marketplace.crypto import DataCipher
from marketplace.errors import NotFound
from marketplace.jobs.models import Job
from marketplace.organizations.models import OrganizationMember
from marketplace.placements import cards
from marketplace.placements.followup import arrears_of, report_due_on, wage_report_of
from marketplace.placements.models import (
    STATUS_LABELS,
    Placement,
    PlacementPublic,
    Recommendation,
    RecommendationPublic,
    WageReportPublic,
)
from marketplace.workers.models import Worker


def _reach_filter(actor: Actor) -> list[ColumnElement[bool]]:
    """Conditions on a Recommendation joined to Job and Worker limiting it to the actor;
    the broker or organisation the account acts for is a subquery (one per account:
    ``user_id`` is unique in both), so no read of its own."""
    require(actor, "recommendation.view")
    if actor.is_system:
        return []
    if actor.role == Role.broker:
        broker = select(col(Broker.id)).where(col(Broker.user_id) == actor.user_id)
        return [col(Recommendation.broker_id) == broker.scalar_subquery()]
    if actor.role in (Role.employer, Role.agency):
        org = (
            select(col(OrganizationMember.organization_id))
            .where(col(OrganizationMember.user_id) == actor.user_id)
            .scalar_subquery()
        )
        return [or_(col(Job.organization_id) == org, col(Job.agency_id) == org)]
    return [col(Worker.hukou_village_code).startswith(actor.region_code)]


S = TypeVar("S", bound=Select)


def _joined(stmt: S) -> S:
    return stmt.join(Job, col(Job.id) == col(Recommendation.job_id)).join(
        Worker, col(Worker.id) == col(Recommendation.worker_id)
    )


async def list_recommendations(
    *,
    session: AsyncSession,
    actor: Actor,
    cipher: DataCipher,
    today: date,
    job_id: int | None = None,
    worker_id: int | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[RecommendationPublic], int]:
    where = _reach_filter(actor)
    if job_id is not None:
        where.append(col(Recommendation.job_id) == job_id)
    if worker_id is not None:
        where.append(col(Recommendation.worker_id) == worker_id)
    if status is not None:
        where.append(col(Recommendation.status) == status)
    # The page and the total in one read; only a page past the end reads the total alone.
    rows = (
        await session.execute(
            _joined(select(Recommendation, func.count().over().label("total")))
            .where(*where)
            .order_by(col(Recommendation.updated_at).desc(), col(Recommendation.id).desc())
            .limit(limit)
            .offset(offset)
        )
    ).all()
    recs = [row[0] for row in rows]
    if rows:
        total = int(rows[0].total)
    elif offset == 0:
        total = 0
    else:
        total = (
            await session.execute(
                _joined(select(func.count()).select_from(Recommendation)).where(*where)
            )
        ).scalar_one()
    return await to_public(session, actor, cipher, recs, today=today), int(total)


async def get_recommendation(
    *, session: AsyncSession, actor: Actor, cipher: DataCipher, recommendation_id: int, today: date
) -> RecommendationPublic:
    where = _reach_filter(actor)
    rec = (
        await session.execute(
            _joined(select(Recommendation)).where(
                col(Recommendation.id) == recommendation_id, *where
            )
        )
    ).scalar_one_or_none()
    if rec is None:
        raise NotFound(f"推荐记录 {recommendation_id} 不存在", field="id")
    return (await to_public(session, actor, cipher, [rec], today=today))[0]


async def to_public(
    session: AsyncSession,
    actor: Actor,
    cipher: DataCipher,
    recs: list[Recommendation],
    *,
    today: date,
) -> list[RecommendationPublic]:
    if not recs:
        return []
    workers = {
        w.id: w
        for w in (
            await session.execute(
                select(Worker).where(col(Worker.id).in_({r.worker_id for r in recs}))
            )
        ).scalars()
    }
    jobs = {
        j.id: j
        for j in (
            await session.execute(select(Job).where(col(Job.id).in_({r.job_id for r in recs})))
        ).scalars()
    }
    brokers = {
        b.id: b
        for b in (
            await session.execute(
                select(Broker).where(col(Broker.id).in_({r.broker_id for r in recs}))
            )
        ).scalars()
    }
    placements = dict(
        (
            await session.execute(
                select(col(Placement.recommendation_id), col(Placement.id)).where(
                    col(Placement.recommendation_id).in_([r.id for r in recs])
                )
            )
        ).all()
    )
    names = await cards.region_names(
        session,
        [w.hukou_village_code for w in workers.values()]
        + [j.work_region_code for j in jobs.values()],
    )
    orgs = await cards.organizations(session, [j.organization_id for j in jobs.values()])
    employer = actor.role in (Role.employer, Role.agency)
    out = []
    for rec in recs:
        worker, job, broker = workers[rec.worker_id], jobs[rec.job_id], brokers.get(rec.broker_id)
        out.append(
            RecommendationPublic(
                id=rec.id or 0,
                job_id=rec.job_id,
                worker_id=rec.worker_id,
                broker_id=rec.broker_id,
                broker_name=broker.name if broker else "",
                note=rec.note,
                status=rec.status,
                status_label=STATUS_LABELS.get(rec.status, rec.status),  # type: ignore[call-overload]
                attribution_until=rec.attribution_until,
                starts_on=rec.starts_on,
                status_reason=rec.status_reason,
                created_at=rec.created_at,
                placement_id=placements.get(rec.id or 0),
                worker=cards.worker_card(
                    worker,
                    names=names,
                    masked=False,
                    cipher=cipher if employer else None,
                    today=today,
                    occupation_names=[],
                ),
                job=cards.job_card(job, names=names, organization=orgs.get(job.organization_id)),
            )
        )
    return out


async def get_placement(
    *, session: AsyncSession, actor: Actor, placement_id: int
) -> PlacementPublic:
    """The recommending broker, the employer and officers of the worker's region."""
    placement = await session.get(Placement, placement_id)
    where = _reach_filter(actor)
    if placement is not None:
        visible = (
            await session.execute(
                _joined(select(col(Recommendation.id))).where(
                    col(Recommendation.id) == placement.recommendation_id, *where
                )
            )
        ).first()
        if visible is None:
            placement = None
    if placement is None or placement.id is None:
        raise NotFound(f"上岗记录 {placement_id} 不存在", field="id")
    return await placement_public(session, placement)


async def placement_public(session: AsyncSession, placement: Placement) -> PlacementPublic:
    assert placement.id is not None
    report = await wage_report_of(session, placement.id)
    case = await arrears_of(session, placement.id)
    return PlacementPublic(
        id=placement.id,
        recommendation_id=placement.recommendation_id,
        job_id=placement.job_id,
        organization_id=placement.organization_id,
        broker_id=placement.broker_id,
        worker_id=placement.worker_id,
        starts_on=placement.starts_on,
        confirmed_at=placement.confirmed_at,
        wage_report_due_on=report_due_on(placement),
        wage_report=None
        if report is None or report.id is None
        else WageReportPublic(
            id=report.id,
            placement_id=placement.id,
            paid_in_full=report.paid_in_full,
            paid_on_time=report.paid_on_time,
            amount_paid_fen=report.amount_paid_fen,
            note=report.note,
            reported_at=report.reported_at,
            arrears_case_id=case.id if case else None,
        ),
    )
