"""Reviewing submissions: the queue per officer, decisions (audited, notified, and
``task.approved`` for billing), bulk approval of clean submissions, completion rate."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace import audit
from marketplace.access import Actor, Role, require
from marketplace.brokers.models import Broker
from marketplace.clock import utcnow
from marketplace.errors import Conflict, DomainError, Forbidden, Invalid, NotFound
from marketplace.events import emit
from marketplace.notifications import service as notifications
from marketplace.tasks import rules
from marketplace.tasks.models import (
    BulkApproveResult,
    DistrictTaskSetting,
    EvidenceFile,
    PersonConflict,
    QueueItem,
    ReviewDecision,
    ReviewRequest,
    ServiceTask,
    SubmissionStatus,
    TaskStatus,
    TaskSubmission,
    TaskType,
)
from marketplace.tasks.service import district_setting
from marketplace.tasks.submissions import release_people

DECISION_TITLES = {
    TaskStatus.approved: "任务审核通过",
    TaskStatus.partly_approved: "任务部分通过",
    TaskStatus.rejected: "任务被退回",
    TaskStatus.township_checked: "任务已通过乡镇初审",
}


async def _pending(session: AsyncSession, task_id: int) -> TaskSubmission | None:
    return (
        await session.execute(
            select(TaskSubmission)
            .where(
                col(TaskSubmission.task_id) == task_id,
                col(TaskSubmission.status).in_(
                    [SubmissionStatus.pending, SubmissionStatus.township_checked]
                ),
            )
            .order_by(col(TaskSubmission.id).desc())
            .limit(1)
        )
    ).scalar_one_or_none()


async def _notify(
    session: AsyncSession, broker_id: int, task: ServiceTask, title: str, body: str
) -> None:
    broker = await session.get(Broker, broker_id)
    if broker is not None and broker.user_id is not None:
        await notifications.send(
            session=session,
            user_id=broker.user_id,
            title=title,
            body=body,
            link=f"/tasks/{task.id}",
        )


async def review(
    *,
    session: AsyncSession,
    actor: Actor,
    task_id: int,
    data: ReviewRequest,
    now: datetime | None = None,
) -> TaskSubmission:
    now = now or utcnow()
    require(actor, "task.review")
    task = await session.get(ServiceTask, task_id, with_for_update=True)
    if task is None:
        raise NotFound(f"任务 {task_id} 不存在", field="task_id")
    require(actor, "task.review", region_code=task.region_code)
    sub = await _pending(session, task_id)
    if sub is None:
        raise Conflict("此任务没有待审核的提交", field="task_id")
    setting = await district_setting(session, task.district_code)
    township = actor.role == Role.township_officer
    if township and not setting.township_check:
        raise Forbidden("本区县未设乡镇初审，由区县审核", field="decision")
    if township and sub.status != SubmissionStatus.pending:
        raise Conflict("乡镇已初审，等待区县审核", field="decision")
    if not township and setting.township_check and sub.status == SubmissionStatus.pending:
        raise Conflict("本区县要求先由乡镇（街道）初审，请等待初审后再审核", field="decision")
    if data.decision == ReviewDecision.township_pass:
        if not township:
            raise Invalid("decision", "初审通过只适用于乡镇（街道）经办人")
        return await _township_pass(session, actor, task, sub, data, now)
    if data.decision == ReviewDecision.approve and township:
        raise Invalid("decision", "乡镇（街道）只能初审通过或退回")
    if data.decision == ReviewDecision.reject:
        return await _reject(session, actor, task, sub, data, now)
    return await _approve(session, actor, task, sub, data, now)


async def _township_pass(
    session: AsyncSession,
    actor: Actor,
    task: ServiceTask,
    sub: TaskSubmission,
    data: ReviewRequest,
    now: datetime,
) -> TaskSubmission:
    sub.status = SubmissionStatus.township_checked
    sub.township_checked_by, sub.township_checked_at = actor.user_id, now
    task.status = TaskStatus.township_checked
    session.add_all([sub, task])
    await session.flush()
    await _record(session, actor, task, sub, "township_pass", data.comment)
    await _notify(
        session,
        sub.broker_id,
        task,
        DECISION_TITLES[TaskStatus.township_checked],
        "乡镇（街道）已初审通过，等待区县审核。",
    )
    return sub


async def _reject(
    session: AsyncSession,
    actor: Actor,
    task: ServiceTask,
    sub: TaskSubmission,
    data: ReviewRequest,
    now: datetime,
) -> TaskSubmission:
    reason = (data.comment or "").strip()
    if not reason:
        raise Invalid("comment", "退回时请写明原因，经纪人据此补充后重新提交")
    sub.status, sub.approved_quantity = SubmissionStatus.rejected, 0
    sub.decided_by, sub.decided_at, sub.comment = actor.user_id, now, reason
    task.status = TaskStatus.rejected
    session.add_all([sub, task])
    await session.flush()
    await release_people(session, sub.id or 0)
    await _record(session, actor, task, sub, "reject", reason)
    await _notify(
        session,
        sub.broker_id,
        task,
        DECISION_TITLES[TaskStatus.rejected],
        f"退回原因：{reason}。截止时间前可补充材料重新提交。",
    )
    return sub


async def _approve(
    session: AsyncSession,
    actor: Actor,
    task: ServiceTask,
    sub: TaskSubmission,
    data: ReviewRequest,
    now: datetime,
) -> TaskSubmission:
    approved = sub.quantity if data.approved_quantity is None else data.approved_quantity
    if approved > sub.quantity:
        raise Invalid("approved_quantity", f"核定数量不能超过提交数量 {sub.quantity}")
    if approved < 1:
        raise Invalid("approved_quantity", "核定数量为 0 时请选择退回并写明原因")
    ttype = await session.get(TaskType, task.task_type_id)
    assert ttype is not None
    status = rules.decided_status(sub.quantity, approved)
    amount = rules.amount_fen(approved, ttype.rate_fen)
    sub.status = SubmissionStatus(status)
    sub.approved_quantity, sub.rate_fen, sub.amount_fen = approved, ttype.rate_fen, amount
    sub.decided_by, sub.decided_at = actor.user_id, now
    sub.comment = (data.comment or "").strip() or None
    task.status, task.approved_quantity, task.approved_at = status, approved, now
    session.add_all([sub, task])
    await session.flush()
    await emit(
        session,
        "task.approved",
        {
            "task_id": task.id,
            "submission_id": sub.id,
            "broker_id": sub.broker_id,
            "task_type_code": ttype.code,
            "task_type_version": ttype.version,
            "district_code": task.district_code,
            "funding_source": ttype.funding_source,
            "approved_quantity": approved,
            "rate_fen": ttype.rate_fen,
            "amount_fen": amount,
            "approved_at": now.isoformat(),
        },
    )
    await _record(session, actor, task, sub, str(status), sub.comment)
    body = f"核定 {approved}{ttype.unit}（提交 {sub.quantity}{ttype.unit}），补贴 {amount / 100:.2f} 元。"
    if sub.comment:
        body += f"审核意见：{sub.comment}"
    await _notify(session, sub.broker_id, task, DECISION_TITLES[TaskStatus(status)], body)
    return sub


async def _record(
    session: AsyncSession,
    actor: Actor,
    task: ServiceTask,
    sub: TaskSubmission,
    decision: str,
    comment: str | None,
) -> None:
    await audit.record(
        session=session,
        actor=actor,
        action="task.review",
        object_type="task",
        object_id=task.id,
        region_code=task.region_code,
        detail={
            "submission_id": sub.id,
            "decision": decision,
            "submitted": sub.quantity,
            "approved": sub.approved_quantity,
            "has_comment": bool(comment),
        },
    )


async def bulk_approve(
    *, session: AsyncSession, actor: Actor, task_ids: list[int], now: datetime | None = None
) -> BulkApproveResult:
    """Approve in full each submission that is clean: waiting for this officer, with
    evidence, and without a double-counting conflict. The rest are left, with why."""
    require(actor, "task.review")
    approved: list[int] = []
    skipped: dict[str, str] = {}
    for task_id in dict.fromkeys(task_ids):
        sub = await _pending(session, task_id)
        if sub is None:
            skipped[str(task_id)] = "没有待审核的提交"
            continue
        files = (
            await session.execute(
                select(func.count())
                .select_from(EvidenceFile)
                .where(col(EvidenceFile.submission_id) == sub.id)
            )
        ).scalar_one()
        conflicts = (
            await session.execute(
                select(func.count())
                .select_from(PersonConflict)
                .where(col(PersonConflict.holding_submission_id) == sub.id)
            )
        ).scalar_one()
        if not files:
            skipped[str(task_id)] = "没有证明材料"
            continue
        if conflicts:
            skipped[str(task_id)] = "存在重复计人冲突，请逐条审核"
            continue
        try:
            async with session.begin_nested():
                await review(
                    session=session,
                    actor=actor,
                    task_id=task_id,
                    data=ReviewRequest(decision=ReviewDecision.approve),
                    now=now,
                )
        except DomainError as exc:
            skipped[str(task_id)] = exc.message
            continue
        approved.append(task_id)
    return BulkApproveResult(approved=approved, skipped=skipped)


@functools.cache
def _queue_statements(shape: str) -> tuple[Select[Any], Select[Any]]:
    """The queue's count and page for one kind of reviewer, built once (an officer
    opens the queue all day; building them took as long as running them): the
    township's first look, the district's review, or the city's view of every district.
    Parameters: ``district``, ``status``, ``region`` (the township), ``limit``, ``offset``."""
    S = TaskSubmission
    where: list[Any]
    if shape == "township":
        where = [
            col(S.district_code) == bindparam("district"),
            col(S.status) == bindparam("status"),
            col(S.region_code).startswith(bindparam("region")),
        ]
    elif shape == "district":
        where = [
            col(S.district_code) == bindparam("district"),
            col(S.status) == bindparam("status"),
        ]
    else:
        checked_districts = select(col(DistrictTaskSetting.district_code)).where(
            col(DistrictTaskSetting.township_check).is_(True)
        )
        where = [
            or_(
                col(S.status) == SubmissionStatus.township_checked,
                and_(
                    col(S.status) == SubmissionStatus.pending,
                    col(S.district_code).not_in(checked_districts),
                ),
            )
        ]
    total = select(func.count()).select_from(S).where(*where)
    # Only the columns an item shows (whole rows would bring each submission's worker
    # list and build an ORM object per row), with its files and conflicts counted in
    # the same query (by their submission indexes).
    files = (
        select(func.count())
        .select_from(EvidenceFile)
        .where(col(EvidenceFile.submission_id) == col(S.id))
        .scalar_subquery()
    )
    conflicts = (
        select(func.count())
        .select_from(PersonConflict)
        .where(col(PersonConflict.holding_submission_id) == col(S.id))
        .scalar_subquery()
    )
    page = (
        select(
            col(S.id),
            col(S.task_id),
            col(S.region_code),
            col(S.broker_id),
            col(S.quantity),
            col(S.status),
            col(S.submitted_at),
            col(ServiceTask.task_type_code),
            col(TaskType.name),
            files.label("files"),
            conflicts.label("conflicts"),
        )
        .join(ServiceTask, col(ServiceTask.id) == col(S.task_id))
        .join(TaskType, col(TaskType.id) == col(ServiceTask.task_type_id))
        .where(*where)
        .order_by(col(S.submitted_at), col(S.id))
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
    )
    return total, page


async def queue(
    *, session: AsyncSession, actor: Actor, limit: int, offset: int
) -> tuple[list[QueueItem], int]:
    """What waits for this officer, oldest first: the township's first look where its
    district asks for one, else the district's (or, for the city, any district's) review."""
    require(actor, "task.review")
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if actor.role == Role.township_officer:
        district = actor.region_code[:6]
        if not (await district_setting(session, district)).township_check:
            return [], 0
        shape = "township"
        params.update(district=district, status=SubmissionStatus.pending, region=actor.region_code)
    elif actor.role == Role.district_admin:
        township = (await district_setting(session, actor.region_code)).township_check
        wanted = SubmissionStatus.township_checked if township else SubmissionStatus.pending
        shape = "district"
        params.update(district=actor.region_code, status=wanted)
    else:
        shape = "city"
    count_statement, page_statement = _queue_statements(shape)
    total = (await session.execute(count_statement, params)).scalar_one()
    rows = (await session.execute(page_statement, params)).all()
    items = [
        QueueItem(
            submission_id=s.id,
            task_id=s.task_id,
            task_type=s.task_type_code,
            task_type_name=s.name,
            region_code=s.region_code,
            broker_id=s.broker_id,
            quantity=s.quantity,
            status=s.status,
            submitted_at=s.submitted_at,
            evidence_count=int(s.files),
            conflict_count=int(s.conflicts),
        )
        for s in rows
    ]
    return items, int(total)


async def completion_rate(
    *, session: AsyncSession, broker_id: int, period: str, as_of: datetime | None = None
) -> rules.CompletionRate:
    """For scoring: see ``rules.completion`` and docs/tasks.md for the edge cases."""
    as_of = as_of or utcnow()
    tasks = list(
        (
            await session.execute(
                select(ServiceTask).where(
                    col(ServiceTask.broker_id) == broker_id, col(ServiceTask.period) == period
                )
            )
        ).scalars()
    )
    ids = [t.id for t in tasks]
    approved_at: dict[int, datetime] = {}
    if ids:
        rows = await session.execute(
            select(col(TaskSubmission.task_id), col(TaskSubmission.submitted_at)).where(
                col(TaskSubmission.task_id).in_(ids),
                col(TaskSubmission.status).in_(
                    [SubmissionStatus.approved, SubmissionStatus.partly_approved]
                ),
            )
        )
        for task_id, submitted_at in rows.all():
            approved_at[task_id] = submitted_at
    outcomes = [
        rules.TaskOutcome(
            deadline=t.deadline,
            approved_submitted_at=approved_at.get(t.id or 0),
            reversed=t.reversed_at is not None,
            awaiting_review=t.status in (TaskStatus.submitted, TaskStatus.township_checked),
        )
        for t in tasks
    ]
    return rules.completion(outcomes, as_of)
