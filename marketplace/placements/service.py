"""Recommendations through to placements (docs/matching.md).

A broker recommends a consenting worker of their villages to a published job; the
first recommender holds the worker for that job for 7 days. The employer shortlists,
rejects or hires (with a start date); the broker confirms onboarding once the worker
has started, which makes a placement and emits ``placement.confirmed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace import audit
from marketplace.access import Actor, Role, require
from marketplace.brokers.models import Broker
from marketplace.clock import local, utcnow
from marketplace.errors import Conflict, Forbidden, Invalid, NotFound
from marketplace.events import emit
from marketplace.jobs.models import Job, JobStatus
from marketplace.notifications import service as inbox
from marketplace.organizations.models import OrganizationMember
from marketplace.placements.models import (
    ACTIVE_STATUSES,
    STATUS_LABELS,
    Placement,
    Recommendation,
    RecommendationCreate,
    RecommendationStatus,
    StatusChange,
)
from marketplace.workers import scope
from marketplace.workers.models import Worker
from marketplace.workers.rules import mask_name

ATTRIBUTION = timedelta(days=7)
S = RecommendationStatus
EMPLOYER, BROKER = "employer", "broker"
# (from, to) -> who may make the change.
TRANSITIONS: dict[tuple[str, str], frozenset[str]] = {
    (S.recommended, S.shortlisted): frozenset({EMPLOYER}),
    (S.recommended, S.rejected): frozenset({EMPLOYER}),
    (S.shortlisted, S.rejected): frozenset({EMPLOYER}),
    (S.shortlisted, S.hired): frozenset({EMPLOYER}),
    (S.recommended, S.withdrawn): frozenset({BROKER}),
    (S.shortlisted, S.withdrawn): frozenset({BROKER}),
    (S.hired, S.withdrawn): frozenset({BROKER}),
    (S.hired, S.onboarded): frozenset({BROKER}),
    (S.hired, S.no_show): frozenset({BROKER, EMPLOYER}),
}
HIRE_PAST_DAYS = 60  # a hire recorded late may start up to this long ago
HIRE_AHEAD_DAYS = 366


def _label(status: str) -> str:
    return STATUS_LABELS.get(status, status)  # type: ignore[call-overload]


def _when(at: datetime) -> str:
    return f"{local(at):%Y-%m-%d %H:%M}"


async def organization_of(session: AsyncSession, actor: Actor) -> int | None:
    """The organisation an employer or agency account acts for."""
    if actor.user_id is None:
        return None
    return (
        await session.execute(
            select(col(OrganizationMember.organization_id)).where(
                col(OrganizationMember.user_id) == actor.user_id
            )
        )
    ).scalar_one_or_none()


def job_belongs_to(job: Job, organization_id: int | None) -> bool:
    return organization_id is not None and organization_id in (job.organization_id, job.agency_id)


async def active_broker(session: AsyncSession, actor: Actor, action: str) -> scope.Reach:
    """A broker's reach (villages), after the ``action`` policy; 403 otherwise."""
    require(actor, action)
    if actor.role != Role.broker:
        raise Forbidden("只有劳务经纪人可以进行此操作")
    return await scope.reach(session, actor, action)


# --- recommend ---------------------------------------------------------------------------


async def recommend(
    *, session: AsyncSession, actor: Actor, data: RecommendationCreate, now: datetime | None = None
) -> Recommendation:
    now = now or utcnow()
    reach = await active_broker(session, actor, "recommendation.create")
    assert reach.broker is not None
    assert reach.broker.id is not None
    worker = await scope.load(session, reach, data.worker_id, field="worker_id")
    if worker.hukou_village_code not in reach.villages:
        raise Forbidden("该劳动者不是您服务的村（社区）的劳动者，不能由您推荐", field="worker_id")
    if not worker.consent_to_recommend:
        raise Conflict(
            "该劳动者未同意被推荐就业：请先征得本人同意并在台账中记录", field="worker_id"
        )
    job = await session.get(Job, data.job_id, with_for_update=True)
    if job is None:
        raise NotFound(f"岗位 {data.job_id} 不存在", field="job_id")
    if job.status != JobStatus.published:
        raise Conflict("岗位不在招聘中，不能推荐", field="job_id")
    await _check_attribution(session, reach.broker.id, job, worker, now)
    rec = Recommendation(
        job_id=data.job_id,
        worker_id=data.worker_id,
        broker_id=reach.broker.id,
        note=(data.note or "").strip() or None,
        attribution_until=now + ATTRIBUTION,
        created_by=actor.user_id,
        created_at=now,
        updated_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(rec)
            await session.flush()
    except IntegrityError:
        # Another broker's recommendation committed between our check and insert.
        raise Conflict("该劳动者刚刚已被推荐到此岗位，请刷新后查看", field="worker_id") from None
    await audit.record(
        session=session,
        actor=actor,
        action="recommendation.create",
        object_type="recommendation",
        object_id=rec.id,
        region_code=worker.hukou_village_code,
        detail={"job_id": job.id, "worker_id": worker.id},
    )
    await _notify_organization(
        session, job, f"经纪人推荐了一位劳动者应聘“{job.title}”", f"/matching/jobs/{job.id}"
    )
    return rec


async def _check_attribution(
    session: AsyncSession, broker_id: int, job: Job, worker: Worker, now: datetime
) -> None:
    rows = (
        (
            await session.execute(
                select(Recommendation)
                .where(
                    col(Recommendation.job_id) == job.id,
                    col(Recommendation.worker_id) == worker.id,
                )
                .order_by(col(Recommendation.id).desc())
                .with_for_update()
            )
        )
        .scalars()
        .all()
    )
    if any(r.status == S.rejected for r in rows):
        raise Conflict("用人单位已谢绝该劳动者应聘此岗位", field="worker_id")
    current = next((r for r in rows if r.status in ACTIVE_STATUSES), None)
    if current is None:
        return
    if current.broker_id == broker_id:
        raise Conflict(
            f"您已于 {_when(current.created_at)} 推荐过该劳动者，当前状态：{_label(current.status)}",
            field="worker_id",
        )
    other = await session.get(Broker, current.broker_id)
    holder = mask_name(other.name if other else None)
    if now < current.attribution_until:
        raise Conflict(
            f"经纪人{holder}已于 {_when(current.created_at)} 推荐该劳动者应聘此岗位，"
            f"推荐归属保留至 {_when(current.attribution_until)}",
            field="worker_id",
        )
    if current.status != S.recommended:
        raise Conflict(
            f"经纪人{holder}推荐的该劳动者已{_label(current.status)}，不能重复推荐",
            field="worker_id",
        )
    # Unanswered past the window: the attribution lapses and passes to this broker.
    current.status = S.lapsed
    current.status_reason = "推荐归属期满未获处理，已由其他经纪人重新推荐"
    current.updated_at = now
    await session.flush()


# --- status changes ------------------------------------------------------------------


@dataclass(frozen=True)
class Changed:
    recommendation: Recommendation
    placement: Placement | None


async def _side(session: AsyncSession, actor: Actor, rec: Recommendation, job: Job) -> str:
    """Whether the actor acts as the job's employer or as the recommending broker; 404
    for anyone else (a recommendation is not public)."""
    missing = NotFound(f"推荐记录 {rec.id} 不存在", field="id")
    if actor.role in (Role.employer, Role.agency):
        require(actor, "recommendation.decide")
        if not job_belongs_to(job, await organization_of(session, actor)):
            raise missing
        return EMPLOYER
    if actor.role == Role.broker:
        require(actor, "recommendation.confirm")
        broker = await scope.broker_of(session, actor)
        if broker is None or broker.id != rec.broker_id:
            raise missing
        return BROKER
    require(actor, "recommendation.decide")  # refuses every other role with a 403
    raise missing


async def change_status(
    *,
    session: AsyncSession,
    actor: Actor,
    recommendation_id: int,
    data: StatusChange,
    today: date,
    now: datetime | None = None,
) -> Changed:
    now = now or utcnow()
    rec = await session.get(Recommendation, recommendation_id, with_for_update=True)
    if rec is None:
        require(actor, "recommendation.view")
        raise NotFound(f"推荐记录 {recommendation_id} 不存在", field="id")
    job = await session.get(Job, rec.job_id)
    assert job is not None
    side = await _side(session, actor, rec, job)
    target = data.status
    allowed = TRANSITIONS.get((rec.status, target))
    if allowed is None:
        raise Conflict(
            f"当前状态为“{_label(rec.status)}”，不能改为“{_label(target)}”", field="status"
        )
    if side not in allowed:
        who = "用人单位" if EMPLOYER in allowed else "推荐的经纪人"
        raise Forbidden(f"“{_label(target)}”只能由{who}操作", field="status")
    placement = None
    if target == S.hired:
        _check_hire(job, data.starts_on, today)
        rec.starts_on = data.starts_on
        rec.hired_at = now
    if target in (S.shortlisted, S.rejected, S.hired):
        rec.decided_at = now
    if target == S.onboarded:
        assert rec.starts_on is not None
        if today < rec.starts_on:
            raise Conflict(
                f"劳动者 {rec.starts_on:%Y-%m-%d} 才开工，开工后才能确认到岗", field="status"
            )
        placement = await _place(session, actor, rec, job, now)
    old = rec.status
    rec.status = target
    rec.status_reason = (data.reason or "").strip() or None
    rec.updated_at = now
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action=f"recommendation.{target}",
        object_type="recommendation",
        object_id=rec.id,
        detail={"from": old, "to": target, "job_id": rec.job_id},
    )
    await _notify_change(session, side, rec, job)
    return Changed(rec, placement)


def _check_hire(job: Job, starts_on: date | None, today: date) -> None:
    if starts_on is None:
        raise Invalid("starts_on", "录用须填写开工日期")
    if starts_on < today - timedelta(days=HIRE_PAST_DAYS):
        raise Invalid("starts_on", f"开工日期不能早于 {HIRE_PAST_DAYS} 天前")
    if starts_on > today + timedelta(days=HIRE_AHEAD_DAYS):
        raise Invalid("starts_on", "开工日期不能晚于一年以后")
    if job.ends_on is not None and starts_on > job.ends_on:
        raise Invalid("starts_on", f"开工日期不能晚于岗位结束日期 {job.ends_on:%Y-%m-%d}")
    if job.status != JobStatus.published:
        raise Conflict("岗位已不在招聘中，不能录用", field="status")


async def _place(
    session: AsyncSession, actor: Actor, rec: Recommendation, job: Job, now: datetime
) -> Placement:
    assert rec.id is not None
    assert rec.starts_on is not None
    assert job.id is not None
    placement = Placement(
        recommendation_id=rec.id,
        job_id=job.id,
        organization_id=job.organization_id,
        broker_id=rec.broker_id,
        worker_id=rec.worker_id,
        starts_on=rec.starts_on,
        wage_min_fen=job.wage_min_fen,
        wage_max_fen=job.wage_max_fen,
        wage_unit=job.wage_unit,
        fee_fixed_fen=job.fee_fixed_fen,
        fee_share_bp=job.fee_share_bp,
        confirmed_by=actor.user_id,
        confirmed_at=now,
    )
    session.add(placement)
    await session.flush()
    await emit(session, "placement.confirmed", placement_payload(placement))
    return placement


def placement_payload(placement: Placement) -> dict[str, Any]:
    """Exactly the fields of docs/events.md, in its order."""
    return {
        "placement_id": placement.id,
        "job_id": placement.job_id,
        "organization_id": placement.organization_id,
        "broker_id": placement.broker_id,
        "worker_id": placement.worker_id,
        "starts_on": placement.starts_on.isoformat(),
        "wage_min_fen": placement.wage_min_fen,
        "wage_max_fen": placement.wage_max_fen,
        "wage_unit": placement.wage_unit,
        "fee_fixed_fen": placement.fee_fixed_fen,
        "fee_share_bp": placement.fee_share_bp,
    }


# --- notifications -------------------------------------------------------------------


async def _notify_organization(session: AsyncSession, job: Job, title: str, link: str) -> None:
    org_ids = [i for i in (job.organization_id, job.agency_id) if i is not None]
    members = await session.execute(
        select(col(OrganizationMember.user_id)).where(
            col(OrganizationMember.organization_id).in_(org_ids)
        )
    )
    for user_id in members.scalars():
        await inbox.send(session=session, user_id=user_id, title=title, link=link)


async def _notify_change(session: AsyncSession, side: str, rec: Recommendation, job: Job) -> None:
    title = f"“{job.title}”的推荐：{_label(rec.status)}"
    if side == EMPLOYER:
        broker = await session.get(Broker, rec.broker_id)
        if broker is not None and broker.user_id is not None:
            await inbox.send(
                session=session, user_id=broker.user_id, title=title, link="/matching/mine"
            )
    else:
        await _notify_organization(session, job, title, f"/matching/jobs/{job.id}")
