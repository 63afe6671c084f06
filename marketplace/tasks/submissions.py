"""Submitting evidence (retried and resumed uploads never duplicate), the per-person
fraud check, and reading submissions and evidence. See docs/tasks.md."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace import audit
from marketplace.access import Actor, Role, in_scope, require
from marketplace.clock import as_utc, utcnow
from marketplace.errors import Conflict, Invalid, NotFound
from marketplace.tasks import evidence, rules
from marketplace.tasks.models import (
    STATUS_LABELS,
    ConflictPublic,
    EvidenceFile,
    EvidencePublic,
    PersonConflict,
    PersonCount,
    ServiceTask,
    SubmissionPublic,
    SubmissionStatus,
    TaskStatus,
    TaskSubmission,
    TaskType,
)
from marketplace.tasks.service import my_broker, visible_task
from marketplace.workers.models import Worker

MAX_KEY = 64


class DoubleCount(Conflict):
    """Refused, but the attempt is kept (committed) for the reviewer and spot checks."""

    keep_changes = True


def _key(upload_key: str | None, files: list[evidence.CheckedFile], quantity: int) -> str:
    """Without a client key, the content itself: the same files and quantity retried
    find the first submission."""
    if upload_key:
        key = upload_key.strip()
        if not key or len(key) > MAX_KEY:
            raise Invalid("upload_id", f"上传编号须为 1–{MAX_KEY} 个字符")
        return key
    hashes = ",".join(sorted(f.sha256 for f in files))
    import hashlib

    return "h:" + hashlib.sha256(f"{quantity}|{hashes}".encode()).hexdigest()[:60]


async def _attach(
    session: AsyncSession,
    store: evidence.EvidenceStore,
    sub: TaskSubmission,
    files: list[evidence.CheckedFile],
) -> int:
    """Add the files the submission does not have yet (by content hash)."""
    have = set(
        (
            await session.execute(
                select(col(EvidenceFile.sha256)).where(col(EvidenceFile.submission_id) == sub.id)
            )
        ).scalars()
    )
    added = 0
    for f in files:
        if f.sha256 in have:
            continue
        have.add(f.sha256)
        evidence.save(store, f)
        session.add(
            EvidenceFile(
                submission_id=sub.id or 0,
                sha256=f.sha256,
                media_type=f.media_type,
                size=len(f.data),
                filename=f.filename,
                width=f.width,
                height=f.height,
                gps_lat=f.gps_lat,
                gps_lon=f.gps_lon,
                taken_at=f.taken_at,
            )
        )
        added += 1
    await session.flush()
    return added


async def _check_people(
    session: AsyncSession,
    task: ServiceTask,
    ttype: TaskType,
    broker_id: int,
    reach_villages: frozenset[str],
    quantity: int,
    worker_ids: list[int],
) -> None:
    if not ttype.per_person:
        if worker_ids:
            raise Invalid("worker_ids", f"“{ttype.name}”不按人计，不需要选择劳动者")
        return
    if len(set(worker_ids)) != len(worker_ids):
        raise Invalid("worker_ids", "同一劳动者在本次提交中出现了两次")
    if len(worker_ids) != quantity:
        raise Invalid(
            "worker_ids",
            f"“{ttype.name}”按人计：请选择 {quantity} 名劳动者（现选 {len(worker_ids)} 名）",
        )
    rows = (await session.execute(select(Worker).where(col(Worker.id).in_(worker_ids)))).scalars()
    found = {w.id: w for w in rows}
    for wid in worker_ids:
        w = found.get(wid)
        if (
            w is None
            or w.deleted_at is not None
            or not (w.hukou_village_code in reach_villages or w.broker_id == broker_id)
        ):
            raise Invalid("worker_ids", f"劳动者 {wid} 不在您的台账中")
    held = list(
        (
            await session.execute(
                select(PersonCount).where(
                    col(PersonCount.task_type_code) == task.task_type_code,
                    col(PersonCount.period) == task.period,
                    col(PersonCount.worker_id).in_(worker_ids),
                )
            )
        ).scalars()
    )
    if held:
        for h in held:
            session.add(
                PersonConflict(
                    task_type_code=task.task_type_code,
                    period=task.period,
                    worker_id=h.worker_id,
                    holding_submission_id=h.submission_id,
                    holding_broker_id=h.broker_id,
                    attempt_task_id=task.id or 0,
                    attempt_broker_id=broker_id,
                )
            )
        await session.flush()
        ids = "、".join(str(h.worker_id) for h in sorted(held, key=lambda h: h.worker_id))
        raise DoubleCount(
            f"劳动者 {ids} 在 {task.period} 已计入“{ttype.name}”，同一人同一期不能重复计算；"
            "此次冲突已记录并提示审核人员",
            field="worker_ids",
        )


async def submit(
    *,
    session: AsyncSession,
    actor: Actor,
    store: evidence.EvidenceStore,
    task_id: int,
    quantity: int,
    note: str,
    worker_ids: list[int],
    files: list[tuple[str, bytes]],
    upload_key: str | None = None,
    now: datetime | None = None,
) -> tuple[TaskSubmission, bool]:
    """Returns the submission and whether it was a replay of an earlier upload."""
    now = now or utcnow()
    require(actor, "task.submit")
    broker, villages = await my_broker(session, actor)
    task = await session.get(ServiceTask, task_id, with_for_update=True)
    if task is None or task.broker_id != broker.id:
        raise NotFound(f"任务 {task_id} 不存在或不是您领取的任务", field="task_id")
    checked = evidence.check_all(files)
    key = _key(upload_key, checked, quantity)
    earlier = (
        await session.execute(
            select(TaskSubmission).where(
                col(TaskSubmission.task_id) == task_id, col(TaskSubmission.upload_key) == key
            )
        )
    ).scalar_one_or_none()
    if earlier is not None:
        return await _resume(session, actor, store, earlier, quantity, worker_ids, checked), True
    if task.status not in (TaskStatus.claimed, TaskStatus.rejected):
        raise Conflict(f"任务当前状态为“{STATUS_LABELS[task.status]}”，不能提交", field="task_id")
    if as_utc(task.deadline) < now:
        raise Conflict("已过截止时间，不能再提交", field="deadline")
    if quantity < 1:
        raise Invalid("quantity", "数量至少为 1")
    if quantity > task.quantity:
        raise Invalid("quantity", f"提交数量 {quantity} 超过任务数量 {task.quantity}")
    if not checked:
        raise Invalid("files", "请至少上传一份证明材料（照片或 PDF）")
    ttype = await session.get(TaskType, task.task_type_id)
    assert ttype is not None
    await _check_people(session, task, ttype, broker.id or 0, villages, quantity, worker_ids)
    sub = TaskSubmission(
        task_id=task_id,
        broker_id=broker.id or 0,
        district_code=task.district_code,
        region_code=task.region_code,
        quantity=quantity,
        note=note.strip()[:1000],
        worker_ids=worker_ids,
        upload_key=key,
        submitted_at=now,
    )
    session.add(sub)
    try:
        async with session.begin_nested():
            await session.flush()
            for wid in worker_ids:
                session.add(
                    PersonCount(
                        task_type_code=task.task_type_code,
                        period=task.period,
                        worker_id=wid,
                        submission_id=sub.id or 0,
                        broker_id=broker.id or 0,
                    )
                )
            await session.flush()
    except IntegrityError as exc:  # a concurrent upload counted the same person first
        raise Conflict("同一劳动者刚被其他提交计入，请刷新后重试", field="worker_ids") from exc
    await _attach(session, store, sub, checked)
    task.status = TaskStatus.submitted
    session.add(task)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="task.submit",
        object_type="task",
        object_id=task_id,
        region_code=task.region_code,
        detail={
            "submission_id": sub.id,
            "quantity": quantity,
            "files": len(checked),
            "persons": len(worker_ids),
        },
    )
    return sub, False


async def _resume(
    session: AsyncSession,
    actor: Actor,
    store: evidence.EvidenceStore,
    sub: TaskSubmission,
    quantity: int,
    worker_ids: list[int],
    checked: list[evidence.CheckedFile],
) -> TaskSubmission:
    """The same upload id again: add the files that did not arrive, change nothing else."""
    if sub.quantity != quantity or sorted(sub.worker_ids) != sorted(worker_ids):
        raise Conflict("此上传编号已用于数量或人员不同的提交，请换一个上传编号", field="upload_id")
    if checked and sub.status == SubmissionStatus.pending:
        added = await _attach(session, store, sub, checked)
        if added:
            await audit.record(
                session=session,
                actor=actor,
                action="task.submit_resume",
                object_type="task",
                object_id=sub.task_id,
                region_code=sub.region_code,
                detail={"submission_id": sub.id, "added_files": added},
            )
    return sub


async def release_people(session: AsyncSession, submission_id: int) -> None:
    """A rejected or reversed submission no longer holds its persons for the period."""
    await session.execute(
        delete(PersonCount).where(col(PersonCount.submission_id) == submission_id)
    )


def is_reviewer(actor: Actor) -> bool:
    return actor.is_system or actor.role in (
        Role.city_admin,
        Role.district_admin,
        Role.township_officer,
    )


async def evidence_of(
    session: AsyncSession, submission_ids: list[int]
) -> dict[int, list[EvidenceFile]]:
    out: dict[int, list[EvidenceFile]] = {i: [] for i in submission_ids}
    if submission_ids:
        rows = await session.execute(
            select(EvidenceFile)
            .where(col(EvidenceFile.submission_id).in_(submission_ids))
            .order_by(col(EvidenceFile.id))
        )
        for f in rows.scalars():
            out[f.submission_id].append(f)
    return out


async def conflicts_of(
    session: AsyncSession, submission_ids: list[int]
) -> dict[int, list[PersonConflict]]:
    out: dict[int, list[PersonConflict]] = {i: [] for i in submission_ids}
    if submission_ids:
        rows = await session.execute(
            select(PersonConflict)
            .where(col(PersonConflict.holding_submission_id).in_(submission_ids))
            .order_by(col(PersonConflict.id))
        )
        for c in rows.scalars():
            out[c.holding_submission_id].append(c)
    return out


def public_submission(
    sub: TaskSubmission,
    files: list[EvidenceFile],
    conflicts: list[PersonConflict],
    *,
    reviewer: bool,
    replayed: bool = False,
) -> SubmissionPublic:
    assert sub.id is not None
    shown = [
        EvidencePublic(
            id=f.id or 0,
            media_type=f.media_type,
            size=f.size,
            filename=f.filename,
            width=f.width,
            height=f.height,
            url=f"/api/v1/evidence/{f.id}",
            gps_lat=f.gps_lat if reviewer else None,
            gps_lon=f.gps_lon if reviewer else None,
            taken_at=f.taken_at if reviewer else None,
        )
        for f in files
    ]
    return SubmissionPublic(
        id=sub.id,
        task_id=sub.task_id,
        broker_id=sub.broker_id,
        quantity=sub.quantity,
        note=sub.note,
        worker_ids=list(sub.worker_ids),
        status=sub.status,
        submitted_at=sub.submitted_at,
        approved_quantity=sub.approved_quantity,
        amount_fen=sub.amount_fen,
        decided_at=sub.decided_at,
        comment=sub.comment,
        evidence=shown,
        replayed=replayed,
        conflicts=[
            ConflictPublic(
                worker_id=c.worker_id,
                other_broker_id=c.attempt_broker_id,
                other_task_id=c.attempt_task_id,
                at=c.at,
            )
            for c in conflicts
        ]
        if reviewer
        else [],
    )


async def submissions_of_task(
    *, session: AsyncSession, actor: Actor, task_id: int
) -> list[SubmissionPublic]:
    await visible_task(session, actor, task_id)
    subs = list(
        (
            await session.execute(
                select(TaskSubmission)
                .where(col(TaskSubmission.task_id) == task_id)
                .order_by(col(TaskSubmission.id).desc())
            )
        ).scalars()
    )
    ids = [s.id or 0 for s in subs]
    files, conflicts = await evidence_of(session, ids), await conflicts_of(session, ids)
    reviewer = is_reviewer(actor)
    return [
        public_submission(s, files[s.id or 0], conflicts[s.id or 0], reviewer=reviewer)
        for s in subs
    ]


async def to_public(
    session: AsyncSession, actor: Actor, sub: TaskSubmission, *, replayed: bool
) -> SubmissionPublic:
    sid = sub.id or 0
    files, conflicts = await evidence_of(session, [sid]), await conflicts_of(session, [sid])
    return public_submission(
        sub, files[sid], conflicts[sid], reviewer=is_reviewer(actor), replayed=replayed
    )


async def evidence_file(
    *, session: AsyncSession, actor: Actor, store: evidence.EvidenceStore, evidence_id: int
) -> tuple[EvidenceFile, bytes]:
    """The shown (stripped) copy, for the submitting broker and the officers of the
    task's region; 404 for everyone else."""
    require(actor, "evidence.view")
    missing = NotFound(f"证明材料 {evidence_id} 不存在", field="evidence_id")
    row = await session.get(EvidenceFile, evidence_id)
    if row is None:
        raise missing
    sub = await session.get(TaskSubmission, row.submission_id)
    assert sub is not None
    if actor.role == Role.broker:
        broker, _ = await my_broker(session, actor)
        if sub.broker_id != broker.id:
            raise missing
    elif not in_scope(actor, sub.region_code):
        raise missing
    try:
        data = evidence.shown_copy(store, row.sha256, row.media_type)
    except FileNotFoundError as exc:
        raise NotFound("证明材料文件缺失，请联系管理员", field="evidence_id") from exc
    return row, data


__all__ = ["DoubleCount", "rules", "submit"]
