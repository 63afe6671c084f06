"""Task types (with versions), publishing, dispatch and claiming, the deadline sweep,
and the tasks made from the register and from arrears cases. See docs/tasks.md."""

from __future__ import annotations

import asyncio
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from marketplace import audit
from marketplace.access import Actor, Role, in_scope, require
from marketplace.brokers.models import Broker, BrokerStatus
from marketplace.clock import SHANGHAI, as_utc, utcnow
from marketplace.db import fetch_page, unit_of_work
from marketplace.errors import Conflict, Forbidden, Invalid, NotFound
from marketplace.events import OutboxEvent
from marketplace.funding import is_funding_source
from marketplace.regions.models import Region, RegionLevel
from marketplace.tasks import rules
from marketplace.tasks.catalogue import HR_UPDATE, RIGHTS_PROTECTION
from marketplace.tasks.models import (
    OPEN_CLAIM_STATES,
    STATUS_LABELS,
    BulkResult,
    DistrictTaskSetting,
    ServiceTask,
    TaskCreate,
    TaskSource,
    TaskStatus,
    TaskType,
    TaskTypeCreate,
    TaskTypeUpdate,
)
from marketplace.workers.models import Worker
from marketplace.workers.rules import STALE_AFTER
from marketplace.workers.scope import broker_and_villages, villages_of

DEFAULT_CLAIM_LIMIT = 10
ARREARS_DAYS = 30

# --- task types ---------------------------------------------------------------------------


async def list_types(
    *, session: AsyncSession, actor: Actor, all_versions: bool = False
) -> list[TaskType]:
    require(actor, "task_type.view")
    stmt = select(TaskType).order_by(col(TaskType.id))
    if not all_versions:
        stmt = stmt.where(col(TaskType.current).is_(True))
    return list((await session.execute(stmt)).scalars())


async def current_type(session: AsyncSession, code: str, *, field: str = "task_type") -> TaskType:
    row = (
        await session.execute(
            select(TaskType).where(col(TaskType.code) == code, col(TaskType.current).is_(True))
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"任务类型 {code} 不存在", field=field)
    return row


def _check_funding(code: str | None) -> None:
    if code is not None and not is_funding_source(code):
        raise Invalid("funding_source", f"资金来源 {code} 不存在")


async def create_type(*, session: AsyncSession, actor: Actor, data: TaskTypeCreate) -> TaskType:
    require(actor, "task_type.manage")
    _check_funding(data.funding_source)
    exists = (
        await session.execute(select(col(TaskType.id)).where(col(TaskType.code) == data.code))
    ).first()
    if exists is not None:
        raise Conflict(f"任务类型代码 {data.code} 已存在", field="code")
    row = TaskType(**data.model_dump(), created_by=actor.user_id)
    session.add(row)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="task_type.create",
        object_type="task_type",
        object_id=row.code,
        region_code=actor.region_code,
        detail={"version": 1, "rate_fen": row.rate_fen},
    )
    return row


async def update_type(
    *,
    session: AsyncSession,
    actor: Actor,
    code: str,
    data: TaskTypeUpdate,
    now: datetime | None = None,
) -> TaskType:
    """Write the next version; tasks published earlier keep the version they have."""
    require(actor, "task_type.manage")
    old = await current_type(session, code, field="code")
    changes = data.model_dump(exclude_unset=True)
    _check_funding(changes.get("funding_source"))
    values = {
        name: getattr(old, name)
        for name in (
            "code",
            "name",
            "unit",
            "rate_fen",
            "funding_source",
            "evidence_kinds",
            "per_person",
            "welfare_post_covers",
            "department",
            "description",
            "active",
        )
    }
    values.update(
        {k: v for k, v in changes.items() if v is not None or k in ("department", "description")}
    )
    if values == {k: getattr(old, k) for k in values}:
        return old  # nothing changed: no new version
    old.current = False
    session.add(old)
    await session.flush()
    row = TaskType(
        **values,
        version=old.version + 1,
        current=True,
        effective_from=now or utcnow(),
        created_by=actor.user_id,
    )
    session.add(row)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="task_type.update",
        object_type="task_type",
        object_id=code,
        region_code=actor.region_code,
        detail={"version": row.version, "old_rate_fen": old.rate_fen, "rate_fen": row.rate_fen},
    )
    return row


# Read for every list or view of tasks: built once.
_TYPES_BY_ID = select(TaskType).where(col(TaskType.id).in_(bindparam("ids", expanding=True)))


async def types_by_id(session: AsyncSession, ids: set[int]) -> dict[int, TaskType]:
    if not ids:
        return {}
    rows = await session.execute(_TYPES_BY_ID, {"ids": sorted(ids)})
    return {t.id: t for t in rows.scalars() if t.id is not None}


# --- district settings --------------------------------------------------------------------


async def district_setting(session: AsyncSession, district_code: str) -> DistrictTaskSetting:
    row = await session.get(DistrictTaskSetting, district_code)
    return row or DistrictTaskSetting(
        district_code=district_code, township_check=False, claim_limit=DEFAULT_CLAIM_LIMIT
    )


async def set_district_setting(
    *, session: AsyncSession, actor: Actor, region_code: str, township_check: bool, claim_limit: int
) -> DistrictTaskSetting:
    district = rules.district_of(region_code)
    require(actor, "task.settings", region_code=district)
    if await session.get(Region, district) is None:
        raise NotFound(f"区划 {region_code} 不存在", field="code")
    row = await session.get(DistrictTaskSetting, district)
    if row is None:
        row = DistrictTaskSetting(district_code=district)
    row.township_check = township_check
    row.claim_limit = claim_limit
    row.updated_at = utcnow()
    session.add(row)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="task.settings",
        object_type="region",
        object_id=district,
        region_code=district,
        detail={"township_check": township_check, "claim_limit": claim_limit},
    )
    return row


# --- publishing ---------------------------------------------------------------------------


def _deadline(value: datetime, now: datetime) -> datetime:
    """A deadline without a time zone is Shanghai time (what an officer types)."""
    moment = value.replace(tzinfo=SHANGHAI) if value.tzinfo is None else value
    moment = as_utc(moment)
    if moment <= now:
        raise Invalid("deadline", "截止时间必须晚于现在")
    if moment > now + timedelta(days=366):
        raise Invalid("deadline", "截止时间不能超过一年")
    return moment


async def _region(session: AsyncSession, code: str) -> Region:
    region = await session.get(Region, code)
    if region is None:
        raise Invalid("region_code", f"区划 {code} 不存在")
    return region


async def active_broker(
    session: AsyncSession, broker_id: int, *, field: str = "broker_id"
) -> Broker:
    broker = await session.get(Broker, broker_id)
    if broker is None or broker.status != BrokerStatus.active:
        raise Invalid(field, f"经纪人 {broker_id} 不存在或未在岗")
    return broker


async def publish(
    *, session: AsyncSession, actor: Actor, data: TaskCreate, now: datetime | None = None
) -> ServiceTask:
    """One task for a village or township: open to its brokers, or assigned to one."""
    now = now or utcnow()
    require(actor, "task.publish", region_code=data.region_code)
    region = await _region(session, data.region_code)
    if region.level not in (RegionLevel.village, RegionLevel.township):
        raise Invalid(
            "region_code", "单个任务只能发布到村（社区）或乡镇（街道）；按村批量发布请用批量发布"
        )
    ttype = await current_type(session, data.task_type)
    if not ttype.active:
        raise Invalid("task_type", f"任务类型 {ttype.name} 已停用")
    deadline = _deadline(data.deadline, now)
    task = ServiceTask(
        task_type_id=ttype.id or 0,
        task_type_code=ttype.code,
        region_code=region.code,
        district_code=rules.district_of(region.code),
        quantity=data.quantity,
        deadline=deadline,
        period=rules.period_of(deadline),
        instructions=data.instructions.strip(),
        published_by=actor.user_id,
        created_at=now,
    )
    if data.broker_id is not None:
        broker = await active_broker(session, data.broker_id)
        if not rules.covers(region.code, await villages_of(session, broker)):
            raise Invalid("broker_id", f"经纪人 {broker.name} 不服务 {region.name}")
        task.assigned, task.broker_id, task.claimed_at = True, broker.id, now
        task.status = TaskStatus.claimed
    session.add(task)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="task.publish",
        object_type="task",
        object_id=task.id,
        region_code=region.code,
        detail={
            "task_type": ttype.code,
            "version": ttype.version,
            "quantity": task.quantity,
            "broker_id": task.broker_id,
        },
    )
    return task


async def bulk_publish(
    *, session: AsyncSession, actor: Actor, data: TaskCreate, now: datetime | None = None
) -> BulkResult:
    """One task for every village under ``region_code`` (a township, a district or the
    city), in one statement; one audit entry names the batch."""
    now = now or utcnow()
    require(actor, "task.publish", region_code=data.region_code)
    if data.broker_id is not None:
        raise Invalid("broker_id", "批量发布的任务向各村经纪人开放，不能指定经纪人")
    region = await _region(session, data.region_code)
    if region.level == RegionLevel.village:
        raise Invalid("region_code", "批量发布请选择乡镇（街道）、区县或全市")
    ttype = await current_type(session, data.task_type)
    if not ttype.active:
        raise Invalid("task_type", f"任务类型 {ttype.name} 已停用")
    deadline = _deadline(data.deadline, now)
    villages = list(
        (
            await session.execute(
                select(col(Region.code))
                .where(
                    col(Region.level) == RegionLevel.village,
                    col(Region.code).startswith(region.code),
                )
                .order_by(col(Region.code))
            )
        ).scalars()
    )
    if not villages:
        raise Invalid("region_code", f"{region.name} 下没有村（社区）")
    batch_id = secrets.token_hex(8)
    common = {
        "task_type_id": ttype.id,
        "task_type_code": ttype.code,
        "quantity": data.quantity,
        "deadline": deadline,
        "period": rules.period_of(deadline),
        "instructions": data.instructions.strip(),
        "status": TaskStatus.open,
        "source": TaskSource.published,
        "batch_id": batch_id,
        "assigned": False,
        "published_by": actor.user_id,
        "created_at": now,
    }
    await session.execute(
        insert(ServiceTask),
        [{**common, "region_code": v, "district_code": v[:6]} for v in villages],
    )
    await audit.record(
        session=session,
        actor=actor,
        action="task.bulk_publish",
        object_type="task_batch",
        object_id=batch_id,
        region_code=region.code,
        detail={
            "task_type": ttype.code,
            "version": ttype.version,
            "villages": len(villages),
            "quantity": data.quantity,
        },
    )
    return BulkResult(batch_id=batch_id, created=len(villages))


# --- reading and dispatch -----------------------------------------------------------------


async def my_broker(session: AsyncSession, actor: Actor) -> tuple[Broker, frozenset[str]]:
    broker, villages = await broker_and_villages(session, actor)
    if broker is None or broker.status != BrokerStatus.active:
        raise Forbidden("您的经纪人资格未生效或已暂停，不能领取或提交任务")
    return broker, villages


def _near(villages: frozenset[str]) -> list[str]:
    """Task regions that cover these villages: the villages and their townships."""
    return sorted({*villages, *(v[:9] for v in villages)})


async def list_tasks(
    *,
    session: AsyncSession,
    actor: Actor,
    limit: int,
    offset: int,
    mine: bool = False,
    status: str | None = None,
    region_code: str | None = None,
    task_type: str | None = None,
) -> tuple[list[ServiceTask], int]:
    """Brokers: the open tasks near them (or, with ``mine``, theirs). Officers: their region's."""
    require(actor, "task.view")
    where: list[Any] = []
    if actor.role == Role.broker:
        broker, villages = await my_broker(session, actor)
        if mine:
            where.append(col(ServiceTask.broker_id) == broker.id)
        else:
            where += [
                col(ServiceTask.status) == TaskStatus.open,
                col(ServiceTask.deadline) > utcnow(),  # the hourly sweep may not have run yet
                col(ServiceTask.region_code).in_(_near(villages)),
            ]
    elif not actor.is_system and actor.region_code != "50":
        where.append(col(ServiceTask.region_code).startswith(actor.region_code))
    if region_code:
        if actor.role != Role.broker:
            require(actor, "task.view", region_code=region_code[:12])
        where.append(col(ServiceTask.region_code).startswith(region_code))
    if status:
        where.append(col(ServiceTask.status) == status)
    if task_type:
        where.append(col(ServiceTask.task_type_code) == task_type)
    order = (
        col(ServiceTask.deadline)
        if actor.role == Role.broker and not mine
        else col(ServiceTask.id).desc()
    )
    return await fetch_page(session, ServiceTask, where, order_by=order, limit=limit, offset=offset)


async def visible_task(session: AsyncSession, actor: Actor, task_id: int) -> ServiceTask:
    """A task the actor may see; 404 otherwise (brokers: open near them, or theirs)."""
    require(actor, "task.view")
    task = await session.get(ServiceTask, task_id)
    missing = NotFound(f"任务 {task_id} 不存在", field="task_id")
    if task is None:
        raise missing
    if actor.role == Role.broker:
        broker, villages = await my_broker(session, actor)
        if task.broker_id == broker.id:
            return task
        if task.status == TaskStatus.open and rules.covers(task.region_code, villages):
            return task
        raise missing
    if not in_scope(actor, task.region_code):
        raise missing
    return task


async def claim(
    *, session: AsyncSession, actor: Actor, task_id: int, now: datetime | None = None
) -> ServiceTask:
    now = now or utcnow()
    require(actor, "task.claim")
    broker, villages = await my_broker(session, actor)
    # Serialise one broker's claims so two at once cannot both pass the limit.
    await session.execute(
        select(col(Broker.id)).where(col(Broker.id) == broker.id).with_for_update()
    )
    task = await session.get(ServiceTask, task_id, with_for_update=True)
    if task is None or (
        task.broker_id != broker.id and not rules.covers(task.region_code, villages)
    ):
        raise NotFound(f"任务 {task_id} 不存在或不在您服务的村（社区）", field="task_id")
    if task.status != TaskStatus.open:
        who = "您" if task.broker_id == broker.id else "其他经纪人"
        raise Conflict(
            f"任务已由{who}领取或已结束（{STATUS_LABELS[task.status]}），不能再领取",
            field="task_id",
        )
    if as_utc(task.deadline) <= now:
        raise Conflict("任务已过截止时间，不能领取", field="deadline")
    limit = (await district_setting(session, task.district_code)).claim_limit
    held = (
        await session.execute(
            select(func.count())
            .select_from(ServiceTask)
            .where(
                col(ServiceTask.broker_id) == broker.id,
                col(ServiceTask.status).in_(OPEN_CLAIM_STATES),
            )
        )
    ).scalar_one()
    if held >= limit:
        raise Conflict(
            f"您已有 {held} 个未完成的任务，达到上限 {limit}，请先完成后再领取", field="claim_limit"
        )
    result = await session.execute(
        update(ServiceTask)
        .where(col(ServiceTask.id) == task_id, col(ServiceTask.status) == TaskStatus.open)
        .values(status=TaskStatus.claimed, broker_id=broker.id, claimed_at=now)
    )
    if not getattr(result, "rowcount", 0):
        raise Conflict("任务刚被其他经纪人领取", field="task_id")
    await session.refresh(task)
    await audit.record(
        session=session,
        actor=actor,
        action="task.claim",
        object_type="task",
        object_id=task_id,
        region_code=task.region_code,
    )
    return task


# --- the deadline sweep and generated tasks ------------------------------------------------


SWEEP_BATCH = 5_000  # tasks moved per transaction by ``sweep_all``


async def sweep(
    *, session: AsyncSession, now: datetime | None = None, limit: int | None = None
) -> dict[str, int]:
    """Past the deadline: unclaimed tasks expire; claimed, rejected and approved ones
    close. Tasks waiting for review stay until an officer decides. ``limit``: at most
    that many tasks per move (``sweep_all`` commits and calls again)."""
    now = now or utcnow()
    moves = {
        TaskStatus.expired: [TaskStatus.open],
        TaskStatus.closed: [
            TaskStatus.claimed,
            TaskStatus.rejected,
            TaskStatus.approved,
            TaskStatus.partly_approved,
        ],
    }
    counts = {}
    for new, olds in moves.items():
        values: dict[str, Any] = {"status": new}
        if new == TaskStatus.closed:
            values["closed_at"] = now
        due = select(col(ServiceTask.id)).where(
            col(ServiceTask.status).in_(olds), col(ServiceTask.deadline) < now
        )
        if limit is not None:
            due = due.limit(limit)
        result = await session.execute(
            update(ServiceTask)
            .where(col(ServiceTask.id).in_(due.scalar_subquery()))
            .values(**values)
        )
        counts[str(new)] = int(getattr(result, "rowcount", 0) or 0)
    return counts


async def sweep_all(
    factory: async_sessionmaker[AsyncSession],
    *,
    now: datetime | None = None,
    batch: int = SWEEP_BATCH,
) -> dict[str, int]:
    """``sweep`` in transactions of at most ``batch`` tasks a move, until none is due.
    A backlog (a month's tasks at its deadline, a year's after a long stop or on a
    generated data set: 914,282 on the Chongqing one) then never holds the write lock
    for long, nor, on SQLite in the server process, the event loop: as one statement
    it stopped a server for 30 s (bench_load.py at Chongqing scale)."""
    now = now or utcnow()
    total: dict[str, int] = {}
    while True:
        async with unit_of_work(factory) as session:
            moved = await sweep(session=session, now=now, limit=batch)
        for status, count in moved.items():
            total[status] = total.get(status, 0) + count
        if max(moved.values()) < batch:
            return total
        await asyncio.sleep(0)  # this process's requests in between


async def _village_broker(
    session: AsyncSession, village: str, keepers: dict[int, int]
) -> int | None:
    """The village's own active broker, else the active keeper of most stale records."""
    home = (
        await session.execute(
            select(col(Broker.id))
            .where(col(Broker.village_code) == village, col(Broker.status) == BrokerStatus.active)
            .order_by(col(Broker.id))
            .limit(1)
        )
    ).scalar_one_or_none()
    if home is not None:
        return int(home)
    for broker_id, _ in sorted(keepers.items(), key=lambda kv: (-kv[1], kv[0])):
        broker = await session.get(Broker, broker_id)
        if broker is not None and broker.status == BrokerStatus.active:
            return broker_id
    return None


# Villages without the period's task looked up by village when there are at most this
# many; more, and one pass over the whole register is cheaper. At 3,000,000 records on
# a slow machine: 100 villages 1.9 s, 1,000 villages 15.2 s, the whole register 15.5 s.
STALE_LOOKUP_VILLAGES = 300
STALE_LOOKUP_CHUNK = 500  # bound parameters a statement


async def hr_task_villages(*, session: AsyncSession, period: str) -> set[str]:
    """The villages that already have the period's HR-database-update task."""
    prefix = f"hr:{period}:"
    keys = (
        await session.execute(
            select(col(ServiceTask.source_key)).where(
                col(ServiceTask.source_key).startswith(prefix)
            )
        )
    ).scalars()
    return {key.removeprefix(prefix) for key in keys if key}


async def stale_villages(*, session: AsyncSession, period: str) -> dict[str, dict[int, int]]:
    """Villages with live register records not verified in the 12 months before the
    period starts, {village: {keeping broker: records}}, among the villages that do not
    have the period's task yet (those that do are skipped anyway).

    Scanning the whole register takes 15 s of a core at 3,000,000 records, and the
    hourly duty ran it every hour to find nothing once each village had its task. Now
    it reads nothing when every village has one, and only the villages still without
    one (through the village index) when at most ``STALE_LOOKUP_VILLAGES`` lack it;
    otherwise the whole register, as before. The duty runs this in a read
    transaction, so it does not hold SQLite's write lock meanwhile."""
    start, _ = rules.period_bounds(period)
    stale_before = start - STALE_AFTER
    have = await hr_task_villages(session=session, period=period)
    villages = set(
        (
            await session.execute(
                select(col(Region.code)).where(col(Region.level) == RegionLevel.village)
            )
        ).scalars()
    )
    lacking = sorted(villages - have)
    if not lacking:
        return {}
    query = (
        select(col(Worker.hukou_village_code), col(Worker.broker_id), func.count())
        .where(
            col(Worker.deleted_at).is_(None),
            or_(
                col(Worker.last_verified_at).is_(None), col(Worker.last_verified_at) < stale_before
            ),
        )
        .group_by(col(Worker.hukou_village_code), col(Worker.broker_id))
    )
    if len(lacking) > STALE_LOOKUP_VILLAGES:
        chunks = [query]
    else:
        chunks = [
            query.where(col(Worker.hukou_village_code).in_(lacking[i : i + STALE_LOOKUP_CHUNK]))
            for i in range(0, len(lacking), STALE_LOOKUP_CHUNK)
        ]
    per_village: dict[str, dict[int, int]] = {}
    for chunk in chunks:
        for village, broker_id, count in (await session.execute(chunk)).all():
            if village not in have:
                per_village.setdefault(village, {})[int(broker_id)] = int(count)
    return per_village


async def generate_hr_tasks(
    *,
    session: AsyncSession,
    period: str,
    now: datetime | None = None,
    stale: dict[str, dict[int, int]] | None = None,
) -> dict[str, int]:
    """Each village with register records not verified in 12 months (as the period
    starts) gets one HR-database-update task for that period, assigned to its broker.
    Idempotent: a village that has the period's task is skipped. ``stale``: the
    villages as ``stale_villages`` found them, when the caller read them before."""
    now = now or utcnow()
    ttype = await current_type(session, HR_UPDATE)
    per_village = (
        stale if stale is not None else await stale_villages(session=session, period=period)
    )
    prefix = f"hr:{period}:"
    done = await hr_task_villages(session=session, period=period)
    deadline = max(rules.period_deadline(period), now + timedelta(days=7))
    new_rows: list[dict[str, Any]] = []
    skipped = 0
    for village in sorted(per_village):
        if village in done:
            continue
        assignee = await _village_broker(session, village, per_village[village])
        if assignee is None:
            skipped += 1
            continue
        new_rows.append(
            {
                "task_type_id": ttype.id,
                "task_type_code": ttype.code,
                "region_code": village,
                "district_code": village[:6],
                "quantity": sum(per_village[village].values()),
                "deadline": deadline,
                "period": period,
                "instructions": "本村台账中有超过 12 个月未核实的记录，请逐人核实并在台账中点“已核实”。",
                "status": TaskStatus.claimed,
                "source": TaskSource.generated,
                "source_key": prefix + village,
                "assigned": True,
                "broker_id": assignee,
                "claimed_at": now,
                "created_at": now,
            }
        )
    if new_rows:
        await session.execute(insert(ServiceTask), new_rows)
    return {"created": len(new_rows), "existing": len(done), "no_broker": skipped}


async def on_arrears_opened(session: AsyncSession, event: OutboxEvent) -> None:
    """An arrears case (欠薪) becomes a rights-protection task for the placing broker."""
    payload = event.payload
    key = f"arrears:{payload['case_id']}"
    exists = (
        await session.execute(select(col(ServiceTask.id)).where(col(ServiceTask.source_key) == key))
    ).first()
    if exists is not None:
        return
    ttype = await current_type(session, RIGHTS_PROTECTION)
    broker = (
        await session.get(Broker, int(payload["broker_id"])) if payload.get("broker_id") else None
    )
    if broker is not None and broker.status != BrokerStatus.active:
        broker = None
    region = broker.village_code if broker is not None else str(payload["region_code"])
    if len(region) < 9:  # a district-level case without a broker: nobody could claim it
        return
    now = utcnow()
    deadline = now + timedelta(days=ARREARS_DAYS)
    task = ServiceTask(
        task_type_id=ttype.id or 0,
        task_type_code=ttype.code,
        region_code=region,
        district_code=region[:6],
        quantity=1,
        deadline=deadline,
        period=rules.period_of(deadline),
        instructions=f"欠薪案件 {payload['case_id']}：请联系劳动者搜集欠薪证据（工资条、考勤、聊天记录等）并上传。",
        source=TaskSource.arrears,
        source_key=key,
        created_at=now,
    )
    if broker is not None:
        task.assigned, task.broker_id, task.claimed_at = True, broker.id, now
        task.status = TaskStatus.claimed
    session.add(task)
    await session.flush()


def current_period(now: datetime | None = None) -> str:
    return rules.period_of(now or utcnow())
