"""Worker register services on both databases: history, events, duplicates and
merging, deletion, the update rate, and encryption at rest."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from marketplace.access import SYSTEM, Actor
from marketplace.accounts import service as accounts
from marketplace.accounts.models import UserUpdate
from marketplace.brokers.models import BrokerVillage
from marketplace.clock import utcnow
from marketplace.crypto import DataCipher
from marketplace.db import unit_of_work
from marketplace.errors import Conflict, Forbidden, NotFound
from marketplace.events import OutboxEvent
from marketplace.regions.models import Region
from marketplace.workers import dedupe, scope, service
from marketplace.workers.models import (
    MERGED,
    DeleteReason,
    DismissRequest,
    Worker,
    WorkerChange,
    WorkerCreate,
    WorkerUpdate,
)
from marketplace.workers.records import to_public
from marketplace.workers.scope import broker_of
from tests.conftest import WUXI, YUZHONG
from tests.marketplace.test_workers_rules import make_id


@dataclass
class Ctx:
    sessions: async_sessionmaker[AsyncSession]
    cipher: DataCipher
    broker: Actor
    broker_id: int
    other_broker: Actor
    village: str
    village2: str
    other_village: str

    async def create(self, actor: Actor | None = None, **fields: Any) -> Worker:
        data = {"name": "王建国", "hukou_village_code": self.village, **fields}
        async with unit_of_work(self.sessions) as session:
            return await service.register(
                session=session,
                actor=actor or self.broker,
                cipher=self.cipher,
                data=WorkerCreate(**data),
            )


async def _villages(session: AsyncSession, district: str, n: int) -> list[str]:
    rows = await session.execute(
        select(col(Region.code))
        .where(col(Region.level) == "village", col(Region.code).startswith(district))
        .order_by(col(Region.code))
        .limit(n)
    )
    return [str(c) for c in rows.scalars()]


@pytest.fixture
async def ctx(
    sessions: async_sessionmaker[AsyncSession], make_account: Any, cipher: DataCipher
) -> Ctx:
    async with sessions() as session:
        own = await _villages(session, YUZHONG, 2)
        other = await _villages(session, WUXI, 1)
    broker = await make_account("broker", own[0])
    other_broker = await make_account("broker", other[0])
    async with sessions() as session:
        row = await broker_of(session, accounts.actor_for(broker.user))
    assert row is not None
    assert row.id is not None
    return Ctx(
        sessions=sessions,
        cipher=cipher,
        broker=accounts.actor_for(broker.user),
        broker_id=row.id,
        other_broker=accounts.actor_for(other_broker.user),
        village=own[0],
        village2=own[1],
        other_village=other[0],
    )


async def _events(sessions: async_sessionmaker[AsyncSession]) -> list[dict[str, Any]]:
    async with sessions() as session:
        rows = await session.execute(
            select(OutboxEvent)
            .where(col(OutboxEvent.name) == "worker.changed")
            .order_by(col(OutboxEvent.id))
        )
        return [e.payload for e in rows.scalars()]


async def _history(ctx: Ctx, worker_id: int) -> list[Any]:
    async with ctx.sessions() as session:
        return await service.history(
            session=session, actor=ctx.broker, cipher=ctx.cipher, worker_id=worker_id
        )


async def test_history_events_and_same_number_conflict(ctx: Ctx) -> None:
    number = make_id(date(1979, 3, 3), 511)
    worker = await ctx.create(id_number=number, phone="13800001111")
    assert worker.id is not None
    async with unit_of_work(ctx.sessions) as session:
        await service.update_worker(
            session=session,
            actor=ctx.broker,
            cipher=ctx.cipher,
            worker_id=worker.id,
            data=WorkerUpdate(phone="13800002222", employment_status="seeking", note=None),
        )
    async with unit_of_work(ctx.sessions) as session:
        await service.verify(session=session, actor=ctx.broker, worker_id=worker.id)

    rows = await _history(ctx, worker.id)
    updates = {r.field: r for r in rows if r.action == "update"}
    assert set(updates) == {"phone", "employment_status"}  # note None → None is no change
    assert updates["phone"].old_value == "138****1111"
    assert updates["phone"].new_value == "138****2222"
    assert updates["employment_status"].new_value == "seeking"
    assert rows[-1].action == "verify"
    assert all(r.actor_user_id == ctx.broker.user_id for r in rows)
    async with ctx.sessions() as session:
        stored = (
            (await session.execute(select(WorkerChange).where(col(WorkerChange.field) == "phone")))
            .scalars()
            .all()
        )
    assert all("1380000" not in (r.new_value or "") for r in stored)

    # The same number, another broker in another district: refused, naming the record.
    with pytest.raises(Conflict, match=f"劳动者编号 {worker.id}"):
        await ctx.create(
            actor=ctx.other_broker, id_number=number, hukou_village_code=ctx.other_village
        )
    assert [e["action"] for e in await _events(ctx.sessions)] == ["create", "update", "verify"]
    assert all(e["worker_id"] == worker.id for e in await _events(ctx.sessions))


async def test_likely_duplicates_dismiss_and_merge_keeps_both_histories(ctx: Ctx) -> None:
    born = date(1970, 7, 7)
    a = await ctx.create(id_number=make_id(born, 111), phone="13900000001", skills=["电焊"])
    # Same phone, same name with a space: one typing slip in the ID number.
    b = await ctx.create(
        name="王 建国",
        id_number=make_id(born, 113),
        phone="13900000001",
        skills=["砌墙"],
        note="另一条",
    )
    # Same village and birth date, different name and phone.
    c = await ctx.create(name="李秀英", id_number=make_id(born, 222), phone="13900000009")
    # Someone else entirely.
    await ctx.create(name="赵六", id_number=make_id(date(1990, 1, 1), 333))
    assert a.id
    assert b.id
    assert c.id

    async with ctx.sessions() as session:
        pairs = await dedupe.likely_duplicates(session=session, actor=ctx.broker, cipher=ctx.cipher)
    found = {(p.a.id, p.b.id): p.reasons for p in pairs}
    assert found == {
        (a.id, b.id): ["same_phone_similar_name", "same_village_birth_date"],
        (a.id, c.id): ["same_village_birth_date"],
        (b.id, c.id): ["same_village_birth_date"],
    }
    assert "13900000001" not in str(pairs)

    async with unit_of_work(ctx.sessions) as session:
        await dedupe.dismiss(session=session, actor=ctx.broker, data=DismissRequest(a=c.id, b=a.id))
        await dedupe.dismiss(session=session, actor=ctx.broker, data=DismissRequest(a=b.id, b=c.id))
    async with ctx.sessions() as session:
        pairs = await dedupe.likely_duplicates(session=session, actor=ctx.broker, cipher=ctx.cipher)
    assert [(p.a.id, p.b.id) for p in pairs] == [(a.id, b.id)]

    # Another broker sees none of it and cannot merge it.
    async with ctx.sessions() as session:
        assert (
            await dedupe.likely_duplicates(
                session=session, actor=ctx.other_broker, cipher=ctx.cipher
            )
            == []
        )
        with pytest.raises(NotFound):
            await dedupe.merge(
                session=session,
                actor=ctx.other_broker,
                cipher=ctx.cipher,
                worker_id=a.id,
                other_id=b.id,
            )

    async with unit_of_work(ctx.sessions) as session:
        merged = await dedupe.merge(
            session=session, actor=ctx.broker, cipher=ctx.cipher, worker_id=a.id, other_id=b.id
        )
    assert merged.skills == ["电焊", "砌墙"]
    assert merged.note == "另一条"
    rows = await _history(ctx, a.id)
    assert {r.origin_worker_id for r in rows} == {a.id, b.id}
    assert any(r.field == "merged_from" and r.new_value == b.id for r in rows)
    assert any(
        r.origin_worker_id == b.id and r.field == "note" and r.action == "create" for r in rows
    )
    async with ctx.sessions() as session:
        tomb = await session.get(Worker, b.id)
        assert tomb is not None
        assert (tomb.deleted_reason, tomb.merged_into_id, tomb.name, tomb.id_number_hash) == (
            MERGED,
            a.id,
            None,
            None,
        )
        with pytest.raises(NotFound, match=f"已合并到劳动者 {a.id}"):
            await service.get_worker(
                session=session, actor=ctx.broker, cipher=ctx.cipher, worker_id=b.id
            )
    events = await _events(ctx.sessions)
    assert {"worker_id": b.id, "action": "merge", "merged_into": a.id} in events
    assert events[-1] == {"worker_id": a.id, "action": "merge"}


async def test_delete_leaves_an_anonymous_tombstone_and_frees_the_number(ctx: Ctx) -> None:
    number = make_id(date(1960, 2, 2), 444)
    worker = await ctx.create(
        id_number=number,
        phone="13700000000",
        certificates=[{"type": "电工证", "number": "D-778899", "expires_on": None}],
        note="腿脚不便",
        employment_status="employed_local",
    )
    assert worker.id
    async with unit_of_work(ctx.sessions) as session:
        await service.delete_worker(
            session=session, actor=ctx.broker, worker_id=worker.id, reason=DeleteReason.deceased
        )
    async with ctx.sessions() as session:
        tomb = await session.get(Worker, worker.id)
        assert tomb is not None
        assert tomb.deleted_at is not None
        assert tomb.deleted_reason == "deceased"
        assert (tomb.hukou_village_code, tomb.broker_id, tomb.employment_status) == (
            ctx.village,
            ctx.broker_id,
            "employed_local",
        )
        personal = (
            tomb.name,
            tomb.id_number_enc,
            tomb.id_number_hash,
            tomb.phone_enc,
            tomb.note,
            tomb.birth_date,
        )
        assert personal == (None,) * 6
        assert tomb.certificates == []
        values = (
            (
                await session.execute(
                    select(WorkerChange).where(col(WorkerChange.worker_id) == worker.id)
                )
            )
            .scalars()
            .all()
        )
        assert values
        assert all(r.old_value is None for r in values)
        # Only the deletion's own row keeps a value: the reason, which is not personal.
        assert [r.new_value for r in values if r.new_value is not None] == ['"deceased"']
        _, total = await service.list_workers(session=session, actor=ctx.broker, limit=10, offset=0)
        assert total == 0
    again = await ctx.create(id_number=number)  # the person may be registered afresh
    assert again.id != worker.id
    assert (await _events(ctx.sessions))[1] == {"worker_id": worker.id, "action": "delete"}


async def test_broker_update_rate(ctx: Ctx) -> None:
    now = utcnow()
    start, end = now - timedelta(days=1), now + timedelta(days=1)
    async with ctx.sessions() as session:
        assert (
            await service.broker_update_rate(
                session=session, broker_id=ctx.broker_id, start=start, end=end
            )
            is None
        )
    a = await ctx.create(id_number=make_id(date(1980, 1, 1), 1))
    await ctx.create(id_number=make_id(date(1980, 1, 2), 1))
    assert a.id
    async with ctx.sessions() as session:
        # Both created in the period; in a later period neither was touched.
        assert (
            await service.broker_update_rate(
                session=session, broker_id=ctx.broker_id, start=start, end=end
            )
            == 1.0
        )
        later = await service.broker_update_rate(
            session=session, broker_id=ctx.broker_id, start=end, end=end + timedelta(days=1)
        )
        assert later == 0.0
    async with unit_of_work(ctx.sessions) as session:
        await service.delete_worker(
            session=session, actor=ctx.broker, worker_id=a.id, reason=DeleteReason.other
        )
    async with ctx.sessions() as session:
        rate = await service.broker_update_rate(
            session=session, broker_id=ctx.broker_id, start=end, end=end + timedelta(days=1)
        )
        assert rate == 0.0  # one live record left, untouched in that period


# --- encryption at rest ------------------------------------------------------------------


async def _text_in_database(sessions: async_sessionmaker[AsyncSession], db_url: str) -> bytes:
    if db_url.startswith("sqlite"):
        path = Path(db_url.split("///", 1)[1])
        return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
    chunks = []
    async with sessions() as session:
        columns = (
            await session.execute(
                text(
                    "SELECT table_name, column_name FROM information_schema.columns "
                    "WHERE table_schema = 'public' AND data_type IN ('text', 'character varying', 'json', 'jsonb')"
                )
            )
        ).all()
        for table, column in columns:
            values = await session.execute(text(f'SELECT "{column}"::text FROM "{table}"'))
            chunks.extend(str(v) for v in values.scalars() if v is not None)
    return "\n".join(chunks).encode()


async def test_no_id_number_or_phone_in_clear_anywhere_in_the_database(
    ctx: Ctx, db_url: str
) -> None:
    people = [(make_id(date(1975, 5, n + 1), 100 + n), f"1391234{n:04d}") for n in range(5)]
    for n, (number, phone) in enumerate(people):
        worker = await ctx.create(
            name=f"测试{'甲乙丙丁戊'[n]}",
            id_number=number,
            phone=phone,
            certificates=[{"type": "焊工证", "number": f"CERT{number}", "expires_on": None}],
        )
        assert worker.id
        async with unit_of_work(ctx.sessions) as session:
            await service.update_worker(
                session=session,
                actor=ctx.broker,
                cipher=ctx.cipher,
                worker_id=worker.id,
                data=WorkerUpdate(phone=f"1581234{n:04d}"),
            )
            await service.get_worker(
                session=session,
                actor=ctx.broker,
                cipher=ctx.cipher,
                worker_id=worker.id,
                reveal=True,
            )
    blob = await _text_in_database(ctx.sessions, db_url)
    assert blob  # the scan read something
    assert "测试甲".encode() in blob  # names are kept in clear, so the scan can see clear text
    for number, phone in people:
        assert number.encode() not in blob
        assert phone.encode() not in blob
        assert json.dumps(number).encode() not in blob
    for n in range(5):
        assert f"1581234{n:04d}".encode() not in blob


async def test_broker_home_village_row_follows_the_account(ctx: Ctx) -> None:
    """A broker account serves its home village; moving it moves that row, and the
    broker then sees the new village's register, not the old one's."""
    await ctx.create(id_number=make_id(date(1988, 8, 8), 9))
    async with unit_of_work(ctx.sessions) as session:
        await accounts.update_user(
            session=session,
            actor=SYSTEM,
            user_id=ctx.broker.user_id or 0,
            data=UserUpdate(region_code=ctx.village2),
        )
    async with ctx.sessions() as session:
        rows = await session.execute(
            select(col(BrokerVillage.village_code)).where(
                col(BrokerVillage.broker_id) == ctx.broker_id
            )
        )
        assert list(rows.scalars()) == [ctx.village2]
    moved = Actor(ctx.broker.user_id, ctx.broker.username, "broker", ctx.village2)
    await ctx.create(
        actor=moved, id_number=make_id(date(1988, 8, 9), 9), hukou_village_code=ctx.village2
    )
    async with ctx.sessions() as session:
        # The record kept from the old village stays with its keeper.
        _, total = await service.list_workers(session=session, actor=moved, limit=10, offset=0)
        assert total == 2
        with pytest.raises(Forbidden):
            await service.list_workers(
                session=session, actor=moved, limit=10, offset=0, village_code=ctx.village
            )


async def test_the_list_page_lines_show_what_the_records_show(ctx: Ctx) -> None:
    """The register page reads only its columns; each line shows what ``to_public``
    shows of the record (numbers masked), in the same order, with the same total."""
    async with unit_of_work(ctx.sessions) as session:  # a village assigned on top
        session.add(BrokerVillage(broker_id=ctx.broker_id, village_code=ctx.village2))
    await ctx.create(id_number=make_id(date(1980, 1, 2), 111), phone="13800002222")
    await ctx.create(name="李秀英", id_number=make_id(date(1991, 5, 6), 222), phone=None)
    await ctx.create(
        name="赵四", id_number=make_id(date(1975, 7, 8), 333), hukou_village_code=ctx.village2
    )
    shown = ("id", "name", "employment_status", "id_number_masked", "phone_masked")
    async with ctx.sessions() as session:
        reach = await scope.reach(session, ctx.broker)
        for filters in ({}, {"q": "李"}, {"village_code": ctx.village2}):
            records_, total = await service.list_workers(
                session=session, actor=ctx.broker, limit=2, offset=0, **filters
            )
            lines, line_total = await service.list_lines(
                session=session, reach=reach, cipher=ctx.cipher, limit=2, offset=0, **filters
            )
            assert line_total == total
            public = [to_public(w, ctx.cipher) for w in records_]
            assert [[getattr(line, f) for f in shown] for line in lines] == [
                [getattr(p, f) for f in shown] for p in public
            ]
            assert [line.hukou_village_code for line in lines] == [
                p.hukou_village_code for p in public
            ]
    assert total == 1
    assert lines[0].name == "赵四"
    assert lines[0].phone_masked is None
