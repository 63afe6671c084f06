"""The broker record: read, list, flags and assigned villages, status changes.

Status changes (suspend, reinstate, retire, eliminate) write a history row, an audit
entry and a ``broker.status_changed`` event (docs/events.md); the inbox message is
sent by the outbox handler in ``notify``. Coverage counts ``status == active`` rows,
so a village whose last broker leaves shows up short on the very next read.
"""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace import audit
from marketplace.access import Actor, Role, in_scope, require
from marketplace.accounts import service as accounts
from marketplace.accounts.models import User
from marketplace.brokers import rules
from marketplace.brokers.models import (
    Broker,
    BrokerPublic,
    BrokerStatus,
    BrokerStatusChange,
    BrokerUpdate,
    BrokerVillage,
    StatusChangePublic,
)
from marketplace.brokers.paging import page
from marketplace.clock import utcnow
from marketplace.errors import Conflict, Forbidden, Invalid, NotFound
from marketplace.events import emit
from marketplace.regions.models import Region, RegionLevel
from marketplace.regions.rules import required_brokers

MAX_ASSIGNED_VILLAGES = 3
MAX_TASK_TYPE_LENGTH = 64


async def get(*, session: AsyncSession, actor: Actor, broker_id: int) -> Broker:
    """A broker sees their own record; staff see the brokers of their region."""
    require(actor, "broker.view")
    broker = await session.get(Broker, broker_id)
    if broker is None:
        raise NotFound(f"经纪人 {broker_id} 不存在", field="id")
    if actor.role == Role.broker:
        if broker.user_id != actor.user_id:
            raise Forbidden("经纪人只能查看本人的档案")
    elif not in_scope(actor, broker.village_code):
        raise Forbidden(f"经纪人所在村（社区）{broker.village_code} 不在您的管辖范围内")
    return broker


async def list_brokers(
    *,
    session: AsyncSession,
    actor: Actor,
    region_code: str | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Broker], int]:
    require(actor, "broker.view")
    where = []
    if actor.role == Role.broker:
        if region_code and not in_scope(actor, region_code):
            raise Forbidden(f"区划 {region_code} 不在您的管辖范围内", field="region_code")
        where.append(col(Broker.user_id) == actor.user_id)
    else:
        prefix = region_code or actor.region_code
        if not in_scope(actor, prefix):
            raise Forbidden(f"区划 {prefix} 不在您的管辖范围内", field="region_code")
        where.append(col(Broker.village_code).startswith(prefix))
    if status:
        if status not in set(BrokerStatus):
            raise Invalid("status", f"未知的经纪人状态 {status!r}")
        where.append(col(Broker.status) == status)
    return await page(
        session,
        Broker,
        where,
        order_by=(col(Broker.village_code), col(Broker.id)),
        limit=limit,
        offset=offset,
    )


async def assigned_villages(session: AsyncSession, broker: Broker) -> list[str]:
    rows = await session.execute(
        select(col(BrokerVillage.village_code))
        .where(
            col(BrokerVillage.broker_id) == broker.id,
            col(BrokerVillage.village_code) != broker.village_code,
        )
        .order_by(col(BrokerVillage.village_code))
    )
    return list(rows.scalars())


async def to_public(session: AsyncSession, broker: Broker) -> BrokerPublic:
    assert broker.id is not None
    village = await session.get(Region, broker.village_code)
    username = None
    if broker.user_id is not None:
        user = await session.get(User, broker.user_id)
        username = user.username if user else None
    return BrokerPublic(
        id=broker.id,
        user_id=broker.user_id,
        username=username,
        name=broker.name,
        broker_no=broker.broker_no,
        village_code=broker.village_code,
        village_name=village.name if village else broker.village_code,
        villages=[broker.village_code, *await assigned_villages(session, broker)],
        status=broker.status,
        status_reason=broker.status_reason,
        certified_at=broker.certified_at,
        key_broker=broker.key_broker,
        welfare_post=broker.welfare_post,
        welfare_post_task_types=list(broker.welfare_post_task_types or []),
        welfare_post_monthly_fen=broker.welfare_post_monthly_fen,
        created_at=broker.created_at,
    )


async def status_history(*, session: AsyncSession, broker_id: int) -> list[StatusChangePublic]:
    rows = await session.execute(
        select(BrokerStatusChange)
        .where(col(BrokerStatusChange.broker_id) == broker_id)
        .order_by(col(BrokerStatusChange.at), col(BrokerStatusChange.id))
    )
    return [
        StatusChangePublic(
            old_status=r.old_status, new_status=r.new_status, reason=r.reason, at=r.at
        )
        for r in rows.scalars()
    ]


# --- flags and villages ----------------------------------------------------------------


def _task_types(values: list[str]) -> list[str]:
    cleaned: list[str] = []
    for raw in values:
        text = raw.strip()
        if not text:
            continue
        if len(text) > MAX_TASK_TYPE_LENGTH:
            raise Invalid("welfare_post_task_types", f"任务类型“{text[:10]}…”过长")
        if text not in cleaned:
            cleaned.append(text)
    return cleaned


async def serving_counts(session: AsyncSession, codes: list[str]) -> dict[str, int]:
    """Active brokers serving each village: residents and brokers assigned there."""
    if not codes:
        return {}
    rows = await session.execute(
        select(col(BrokerVillage.village_code), func.count(func.distinct(col(Broker.id))))
        .join(Broker, col(Broker.id) == col(BrokerVillage.broker_id))
        .where(
            col(BrokerVillage.village_code).in_(codes),
            col(Broker.status) == BrokerStatus.active,
        )
        .group_by(col(BrokerVillage.village_code))
    )
    return {code: int(n) for code, n in rows.all()}


async def _check_assignments(
    session: AsyncSession, actor: Actor, broker: Broker, codes: list[str]
) -> list[str]:
    """The staffing rule decides where an extra village may be assigned: only to a
    village of the broker's district that is still short of brokers."""
    field = "assigned_villages"
    wanted: list[str] = []
    for code in codes:
        code = code.strip()
        if code and code != broker.village_code and code not in wanted:
            wanted.append(code)
    if len(wanted) > MAX_ASSIGNED_VILLAGES:
        raise Invalid(field, f"除本村外最多再分配 {MAX_ASSIGNED_VILLAGES} 个村（社区）")
    current = set(await assigned_villages(session, broker))
    new = [code for code in wanted if code not in current]
    if new and broker.status != BrokerStatus.active:
        raise Conflict("只能给在岗的经纪人分配村（社区）", field=field)
    serving = await serving_counts(session, new)
    for code in new:
        region = await session.get(Region, code)
        if region is None or region.level != RegionLevel.village:
            raise Invalid(field, f"{code} 不是村（社区）级区划")
        if code[:6] != broker.village_code[:6]:
            raise Invalid(field, f"{region.name}（{code}）不在经纪人所在区县，不能分配")
        if not in_scope(actor, code):
            raise Forbidden(f"区划 {code} 不在您的管辖范围内", field=field)
        need = required_brokers(region.population)
        if serving.get(code, 0) >= need:
            raise Invalid(
                field,
                f"{region.name} 按配备标准需要 {need} 名经纪人，已有 {serving.get(code, 0)} 名，无需再分配",
            )
    return wanted


async def update(
    *, session: AsyncSession, actor: Actor, broker_id: int, data: BrokerUpdate
) -> Broker:
    broker = await get(session=session, actor=actor, broker_id=broker_id)
    require(actor, "broker.update", region_code=broker.village_code)
    given = data.model_dump(exclude_unset=True)
    changed: list[str] = []
    if "key_broker" in given and data.key_broker is not None:
        broker.key_broker = data.key_broker
        changed.append("key_broker")
    post = data.welfare_post if data.welfare_post is not None else broker.welfare_post
    types = (
        _task_types(data.welfare_post_task_types)
        if data.welfare_post_task_types is not None
        else list(broker.welfare_post_task_types or [])
    )
    monthly = (
        data.welfare_post_monthly_fen
        if "welfare_post_monthly_fen" in given
        else broker.welfare_post_monthly_fen
    )
    if any(
        k in given for k in ("welfare_post", "welfare_post_task_types", "welfare_post_monthly_fen")
    ):
        if post and not types:
            raise Invalid("welfare_post_task_types", "公益性岗位须列出岗位覆盖的任务类型")
        if post and monthly is None:
            raise Invalid("welfare_post_monthly_fen", "公益性岗位须填写每月岗位补贴")
        if not post:
            types, monthly = [], None  # no post, nothing it covers
        broker.welfare_post = post
        broker.welfare_post_task_types = types
        broker.welfare_post_monthly_fen = monthly
        changed.append("welfare_post")
    if data.assigned_villages is not None:
        wanted = await _check_assignments(session, actor, broker, data.assigned_villages)
        await session.execute(
            delete(BrokerVillage).where(
                col(BrokerVillage.broker_id) == broker.id,
                col(BrokerVillage.village_code) != broker.village_code,
                col(BrokerVillage.village_code).not_in(wanted),
            )
        )
        current = set(await assigned_villages(session, broker))
        assert broker.id is not None
        for code in wanted:
            if code not in current:
                session.add(BrokerVillage(broker_id=broker.id, village_code=code))
        changed.append("assigned_villages")
    session.add(broker)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="broker.update",
        object_type="broker",
        object_id=broker.id,
        region_code=broker.village_code,
        detail={"fields": changed},
    )
    return broker


# --- status ----------------------------------------------------------------------------


async def change_status(
    *, session: AsyncSession, actor: Actor, broker_id: int, action: str, reason: str | None
) -> Broker:
    """Suspend, reinstate, retire or eliminate. Any status but active also disables the
    broker's login (and ends its sessions): a broker off duty must not keep editing the
    worker register. Reinstating enables it again."""
    broker = await get(session=session, actor=actor, broker_id=broker_id)
    require(actor, "broker.set_status", region_code=broker.village_code)
    target = rules.status_change(broker.status, action)
    text = rules.check_status_reason(reason)
    old = broker.status
    broker.status = target
    broker.status_reason = text
    session.add(broker)
    assert broker.id is not None
    session.add(
        BrokerStatusChange(
            broker_id=broker.id,
            old_status=old,
            new_status=target,
            reason=text,
            actor_user_id=actor.user_id,
        )
    )
    if broker.user_id is not None:
        user = await session.get(User, broker.user_id)
        if user is not None:
            user.is_active = target == BrokerStatus.active
            user.updated_at = utcnow()
            session.add(user)
            if not user.is_active:
                await accounts.end_sessions(session=session, user_id=user.id)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action=f"broker.{action}",
        object_type="broker",
        object_id=broker.id,
        region_code=broker.village_code,
        detail={"from": old, "to": target},
    )
    await emit(
        session,
        "broker.status_changed",
        {"broker_id": broker.id, "old_status": old, "new_status": target, "reason": text},
    )
    return broker
