"""Who may see, edit and unmask which worker records (docs/access.md).

A broker sees and edits the records of their villages (home village plus assigned
ones) and always those they keep; officers above the village read their region.
A record outside the reader's reach is reported as absent (404): the register is
personal data, and a 403 would confirm that the person is registered.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace.access import Actor, Role, in_scope, require
from marketplace.brokers.models import Broker, BrokerStatus, BrokerVillage
from marketplace.errors import Forbidden, NotFound
from marketplace.workers.models import MERGED, Worker


@dataclass(frozen=True)
class Reach:
    actor: Actor
    broker: Broker | None  # the actor's broker row, for brokers
    villages: frozenset[str]  # the broker's villages; empty for officers

    @property
    def broker_id(self) -> int | None:
        return self.broker.id if self.broker else None

    def sees(self, worker: Worker) -> bool:
        if self.actor.role == Role.broker:
            return worker.hukou_village_code in self.villages or (
                self.broker is not None and worker.broker_id == self.broker.id
            )
        return in_scope(self.actor, worker.hukou_village_code)

    def may_reveal(self, worker: Worker) -> bool:
        if self.actor.is_system:
            return True
        if self.actor.role == Role.broker:
            return self.broker is not None and worker.broker_id == self.broker.id
        return in_scope(self.actor, worker.hukou_village_code)


async def broker_of(session: AsyncSession, actor: Actor) -> Broker | None:
    if actor.user_id is None:
        return None
    return (
        await session.execute(select(Broker).where(col(Broker.user_id) == actor.user_id))
    ).scalar_one_or_none()


async def villages_of(session: AsyncSession, broker: Broker) -> frozenset[str]:
    rows = await session.execute(
        select(col(BrokerVillage.village_code)).where(col(BrokerVillage.broker_id) == broker.id)
    )
    return frozenset({broker.village_code, *rows.scalars()})


# A broker's row with each of their assigned villages (one row without any): read on
# most of a broker's requests, so one round trip, built once.
_BROKER_WITH_VILLAGES = (
    select(Broker, col(BrokerVillage.village_code))
    .outerjoin(BrokerVillage, col(BrokerVillage.broker_id) == col(Broker.id))
    .where(col(Broker.user_id) == bindparam("user_id"))
)


async def broker_and_villages(
    session: AsyncSession, actor: Actor
) -> tuple[Broker | None, frozenset[str]]:
    """``broker_of`` and ``villages_of`` in one query (the home village and every
    assigned one)."""
    if actor.user_id is None:
        return None, frozenset()
    rows = (await session.execute(_BROKER_WITH_VILLAGES, {"user_id": actor.user_id})).all()
    if not rows:
        return None, frozenset()
    broker = rows[0][0]
    return broker, frozenset({broker.village_code, *(code for _, code in rows if code)})


async def reach(session: AsyncSession, actor: Actor, action: str = "worker.view") -> Reach:
    """The actor's reach into the register; 403 for roles that may not ``action``."""
    require(actor, action)
    if actor.role != Role.broker:
        return Reach(actor=actor, broker=None, villages=frozenset())
    broker, villages = await broker_and_villages(session, actor)
    if broker is None or broker.status != BrokerStatus.active:
        raise Forbidden("您的经纪人资格未生效或已暂停，不能使用劳动者台账")
    return Reach(actor=actor, broker=broker, villages=villages)


async def load(
    session: AsyncSession, reach_: Reach, worker_id: int, *, field: str = "id"
) -> Worker:
    """A live record the actor may see; 404 otherwise (and for a merged one, where it went)."""
    worker = await session.get(Worker, worker_id)
    if worker is None or not reach_.sees(worker):
        raise NotFound(f"劳动者 {worker_id} 不存在", field=field)
    if worker.deleted_at is not None:
        if worker.deleted_reason == MERGED and worker.merged_into_id:
            raise NotFound(
                f"劳动者 {worker_id} 已合并到劳动者 {worker.merged_into_id}", field=field
            )
        raise NotFound(f"劳动者 {worker_id} 已删除", field=field)
    return worker


async def load_for_edit(
    session: AsyncSession, actor: Actor, worker_id: int, *, field: str = "id"
) -> tuple[Reach, Worker]:
    """Readers who may not edit learn that (403) only about records they can see."""
    reach_ = await reach(session, actor)
    worker = await load(session, reach_, worker_id, field=field)
    require(actor, "worker.edit")
    return reach_, worker


def require_village(reach_: Reach, village_code: str) -> None:
    if reach_.actor.is_system or village_code in reach_.villages:
        return
    raise Forbidden(
        f"户籍村（社区）{village_code} 不是您服务的村（社区），不能在此登记",
        field="hukou_village_code",
    )
