"""Spot checks (抽查复查): a risk-weighted sample of approved tasks, drawn from a
recorded seed; a failed check reverses the subsidy (``task.reversed``) and counts
against the broker. See docs/tasks.md."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace import audit
from marketplace.access import Actor, require
from marketplace.brokers.models import Broker
from marketplace.clock import utcnow
from marketplace.db import fetch_page
from marketplace.errors import Conflict, Invalid, NotFound
from marketplace.events import emit
from marketplace.notifications import service as notifications
from marketplace.regions.models import Region
from marketplace.tasks import rules
from marketplace.tasks.models import (
    PersonConflict,
    ServiceTask,
    SpotCheck,
    SpotCheckCreate,
    SpotCheckItem,
    SpotCheckItemPublic,
    SpotCheckPublic,
    SpotCheckResult,
    SubmissionStatus,
    TaskSubmission,
    TaskType,
)
from marketplace.tasks.submissions import release_people


async def candidates(
    session: AsyncSession, region_code: str, period: str
) -> tuple[list[rules.Candidate], dict[int, TaskSubmission]]:
    """Approved, not reversed, not yet sampled tasks of the region and period."""
    sampled = select(col(SpotCheckItem.task_id))
    rows = (
        await session.execute(
            select(ServiceTask, TaskSubmission, Broker)
            .join(TaskSubmission, col(TaskSubmission.task_id) == col(ServiceTask.id))
            .join(Broker, col(Broker.id) == col(TaskSubmission.broker_id))
            .where(
                col(ServiceTask.region_code).startswith(region_code),
                col(ServiceTask.period) == period,
                col(ServiceTask.reversed_at).is_(None),
                col(TaskSubmission.status).in_(
                    [SubmissionStatus.approved, SubmissionStatus.partly_approved]
                ),
                col(ServiceTask.id).not_in(sampled),
            )
            .order_by(col(ServiceTask.id))
        )
    ).all()
    subs = {sub.id: sub for _, sub, _ in rows}
    conflicts = (
        dict(
            (
                await session.execute(
                    select(col(PersonConflict.holding_submission_id), func.count())
                    .where(col(PersonConflict.holding_submission_id).in_(list(subs)))
                    .group_by(col(PersonConflict.holding_submission_id))
                )
            ).all()
        )
        if subs
        else {}
    )
    out: list[rules.Candidate] = []
    by_task: dict[int, TaskSubmission] = {}
    for task, sub, broker in rows:
        task_id = int(task.id or 0)
        by_task[task_id] = sub
        out.append(
            rules.Candidate(
                task_id=task_id,
                task_type_code=task.task_type_code,
                approved_quantity=sub.approved_quantity or 0,
                broker_since=broker.certified_at or broker.created_at,
                conflicts=int(conflicts.get(sub.id or 0, 0)),
            )
        )
    return out, by_task


async def draw(
    *, session: AsyncSession, actor: Actor, data: SpotCheckCreate, now: datetime | None = None
) -> SpotCheck:
    now = now or utcnow()
    require(actor, "spot_check.draw", region_code=data.region_code)
    if await session.get(Region, data.region_code) is None:
        raise Invalid("region_code", f"区划 {data.region_code} 不存在")
    pool, subs = await candidates(session, data.region_code, data.period)
    if not pool:
        raise Conflict(f"{data.period} 在该区划没有可抽查的已通过任务", field="period")
    seed = data.seed if data.seed is not None else secrets.randbits(62)
    sample = rules.draw(rules.weigh(pool, now), data.sample_size, seed)
    check = SpotCheck(
        region_code=data.region_code,
        period=data.period,
        sample_size=len(sample),
        seed=seed,
        population=len(pool),
        drawn_by=actor.user_id,
        created_at=now,
    )
    session.add(check)
    await session.flush()
    for item in sample:
        sub = subs[item.task_id]
        session.add(
            SpotCheckItem(
                spot_check_id=check.id or 0,
                task_id=item.task_id,
                submission_id=sub.id or 0,
                broker_id=sub.broker_id,
                weight=item.weight,
                reasons=list(item.reasons),
            )
        )
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="spot_check.draw",
        object_type="spot_check",
        object_id=check.id,
        region_code=data.region_code,
        detail={
            "period": data.period,
            "seed": seed,
            "sample": len(sample),
            "population": len(pool),
        },
    )
    return check


async def _load(session: AsyncSession, actor: Actor, spot_check_id: int) -> SpotCheck:
    require(actor, "spot_check.view")
    check = await session.get(SpotCheck, spot_check_id)
    if check is None or not (
        actor.is_system
        or check.region_code.startswith(actor.region_code)
        or actor.region_code == "50"
    ):
        raise NotFound(f"抽查 {spot_check_id} 不存在", field="spot_check_id")
    return check


async def get(*, session: AsyncSession, actor: Actor, spot_check_id: int) -> SpotCheckPublic:
    check = await _load(session, actor, spot_check_id)
    items = (
        await session.execute(
            select(SpotCheckItem)
            .where(col(SpotCheckItem.spot_check_id) == spot_check_id)
            .order_by(col(SpotCheckItem.weight).desc(), col(SpotCheckItem.task_id))
        )
    ).scalars()
    public = SpotCheckPublic.model_validate(check, from_attributes=True)
    public.items = [SpotCheckItemPublic.model_validate(i, from_attributes=True) for i in items]
    return public


async def list_checks(
    *, session: AsyncSession, actor: Actor, limit: int, offset: int
) -> tuple[list[SpotCheck], int]:
    require(actor, "spot_check.view")
    where = (
        []
        if actor.region_code == "50"
        else [col(SpotCheck.region_code).startswith(actor.region_code)]
    )
    return await fetch_page(
        session, SpotCheck, where, order_by=col(SpotCheck.id).desc(), limit=limit, offset=offset
    )


async def record_result(
    *,
    session: AsyncSession,
    actor: Actor,
    spot_check_id: int,
    data: SpotCheckResult,
    now: datetime | None = None,
) -> SpotCheckItem:
    now = now or utcnow()
    check = await _load(session, actor, spot_check_id)
    require(actor, "spot_check.record", region_code=check.region_code)
    item = (
        await session.execute(
            select(SpotCheckItem).where(
                col(SpotCheckItem.spot_check_id) == spot_check_id,
                col(SpotCheckItem.task_id) == data.task_id,
            )
        )
    ).scalar_one_or_none()
    if item is None:
        raise Invalid("task_id", f"任务 {data.task_id} 不在这次抽查的样本中")
    if item.result != "pending":
        raise Conflict("这条抽查结果已经记录，不能更改", field="task_id")
    notes = (data.notes or "").strip() or None
    if data.result == "fail" and not notes:
        raise Invalid("notes", "复查不通过时请写明核查情况")
    item.result, item.notes, item.checked_by, item.checked_at = (
        data.result,
        notes,
        actor.user_id,
        now,
    )
    session.add(item)
    task = await session.get(ServiceTask, item.task_id)
    sub = await session.get(TaskSubmission, item.submission_id)
    assert task is not None
    assert sub is not None
    if data.result == "fail":
        await _reverse(session, check, item, task, sub, notes or "", now)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="spot_check.result",
        object_type="spot_check",
        object_id=check.id,
        region_code=task.region_code,
        detail={"task_id": task.id, "result": data.result},
    )
    return item


async def _reverse(
    session: AsyncSession,
    check: SpotCheck,
    item: SpotCheckItem,
    task: ServiceTask,
    sub: TaskSubmission,
    reason: str,
    now: datetime,
) -> None:
    ttype = await session.get(TaskType, task.task_type_id)
    assert ttype is not None
    sub.status = SubmissionStatus.reversed
    task.reversed_at = now
    session.add_all([sub, task])
    await session.flush()
    await release_people(session, sub.id or 0)
    await emit(
        session,
        "task.reversed",
        {
            "task_id": task.id,
            "submission_id": sub.id,
            "broker_id": sub.broker_id,
            "district_code": task.district_code,
            "funding_source": ttype.funding_source,
            "amount_fen": sub.amount_fen or 0,
            "reason": reason,
            "spot_check_id": check.id,
        },
    )
    broker = await session.get(Broker, sub.broker_id)
    if broker is not None and broker.user_id is not None:
        await notifications.send(
            session=session,
            user_id=broker.user_id,
            title="抽查复查未通过，补贴将被追回",
            body=f"任务 {task.id}（{ttype.name}）复查未通过：{reason}",
            link=f"/tasks/{task.id}",
        )


async def failures(*, session: AsyncSession, broker_id: int, period: str | None = None) -> int:
    """Failed spot checks against a broker (for scoring), optionally for one period."""
    stmt = (
        select(func.count())
        .select_from(SpotCheckItem)
        .where(col(SpotCheckItem.broker_id) == broker_id, col(SpotCheckItem.result) == "fail")
    )
    if period:
        stmt = stmt.join(SpotCheck, col(SpotCheck.id) == col(SpotCheckItem.spot_check_id)).where(
            col(SpotCheck.period) == period
        )
    return int((await session.execute(stmt)).scalar_one())
