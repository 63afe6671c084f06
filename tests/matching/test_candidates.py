"""A job's candidates as each reader may see them, read fresh on every request: a
worker's edit shows in the next list, a deleted worker leaves it at once, and a
broker's pool keeps the prefilter's order when their villages hold more than it
takes (docs/matching.md, "Candidates for a job" and "Who sees which workers")."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from marketplace.access import Actor
from marketplace.crypto import DataCipher
from marketplace.db import unit_of_work
from marketplace.dispatcher import Registry, drain
from marketplace.errors import NotFound
from marketplace.placements import candidates as prefilter
from marketplace.placements import service
from marketplace.placements.models import CandidateOut, RecommendationCreate
from marketplace.workers import service as workers
from marketplace.workers.models import DeleteReason, Mobility, WageUnit, WorkerUpdate
from matching import matches
from tests.marketplace import placements_scene
from tests.marketplace.placements_scene import Scene


@pytest.fixture
async def scene(
    sessions: async_sessionmaker[AsyncSession], make_account: Any, cipher: DataCipher
) -> Scene:
    built = await placements_scene.build(sessions, make_account, cipher)
    await _follow(built)
    return built


async def _follow(s: Scene) -> None:
    """Deliver worker.changed to the candidate prefilter."""
    registry = Registry()
    for name, handler in prefilter.HANDLERS.items():
        registry.subscribe(name, "candidates", handler)
    await drain(s.sessions, registry)


async def listed(s: Scene, actor: Actor) -> tuple[dict[int, CandidateOut], int]:
    async with s.sessions() as session:
        items, total = await matches.candidates(
            session=session, actor=actor, cipher=s.cipher, job_id=s.job_id
        )
    return {item.worker.id: item for item in items}, total


def reason(item: CandidateOut, name: str) -> str:
    return next(c.reason for c in item.components if c.name == name)


async def test_each_reader_sees_whom_the_rules_allow(scene: Scene) -> None:
    s = scene
    for broker in (s.broker_a, s.broker_b):  # the village's brokers: named, consent shown
        seen, total = await listed(s, broker)
        assert (set(seen), total) == ({s.worker_id, s.silent_worker_id}, 2)
        assert seen[s.worker_id].worker.name == "张一"
        assert seen[s.silent_worker_id].worker.consent is False
        assert seen[s.worker_id].worker.phone is None  # the register's audited reveal
    assert await listed(s, s.broker_far) == ({}, 0)  # another district's broker
    officer, _ = await listed(s, s.officer)
    assert set(officer) == {s.worker_id, s.silent_worker_id}

    employer, total = await listed(s, s.employer)
    assert (set(employer), total) == ({s.worker_id}, 1)  # consenting workers only
    card = employer[s.worker_id].worker
    assert (card.name, card.phone, card.masked) == ("张*", None, True)
    assert card.village.endswith(("街道", "镇", "乡"))  # the township, not the village
    with pytest.raises(NotFound):
        await listed(s, s.other_employer)

    async with unit_of_work(s.sessions) as session:
        rec = await service.recommend(
            session=session,
            actor=s.broker_a,
            data=RecommendationCreate(job_id=s.job_id, worker_id=s.worker_id),
        )
    employer, _ = await listed(s, s.employer)
    named = employer[s.worker_id]
    assert (named.worker.name, named.worker.phone, named.worker.masked) == (
        "张一",
        "13800000001",
        False,
    )
    assert (named.recommendation_id, named.recommendation_status) == (rec.id, "recommended")
    mine, _ = await listed(s, s.broker_b)
    assert mine[s.worker_id].recommendation_id == rec.id
    assert mine[s.silent_worker_id].recommendation_id is None


async def test_a_worker_edit_shows_in_the_next_list(scene: Scene) -> None:
    s = scene
    before, _ = await listed(s, s.broker_a)
    assert "劳动者未登记期望工资" in reason(before[s.worker_id], "wage")
    async with unit_of_work(s.sessions) as session:
        await workers.update_worker(
            session=session,
            actor=s.broker_a,
            cipher=s.cipher,
            worker_id=s.worker_id,
            data=WorkerUpdate(wage_min_fen=500_00, wage_unit=WageUnit.day, mobility=Mobility.local),
        )
    after, _ = await listed(s, s.broker_a)  # before the outbox delivers anything
    wage = reason(after[s.worker_id], "wage")
    assert "低于期望 500 元/天" in wage
    assert "只在本区县务工" in reason(after[s.worker_id], "distance")
    assert after[s.worker_id].score < before[s.worker_id].score

    async with unit_of_work(s.sessions) as session:
        await workers.delete_worker(
            session=session,
            actor=s.broker_a,
            worker_id=s.silent_worker_id,
            reason=DeleteReason.person_request,
        )
    gone, total = await listed(s, s.broker_a)  # the prefilter still holds its rows
    assert (set(gone), total) == ({s.worker_id}, 1)


async def test_a_brokers_pool_keeps_the_order_past_its_limit(
    scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Within the limit one query takes the broker's villages whole; past it the pool is
    the prefilter's pick: the most recently verified first."""
    s = scene
    async with unit_of_work(s.sessions) as session:
        await workers.verify(session=session, actor=s.broker_a, worker_id=s.silent_worker_id)
    await _follow(s)
    villages = frozenset({s.village})
    near = s.village[:6]
    async with s.sessions() as session:
        whole = await prefilter.pool(
            session, prefilter.PoolQuery(exact=["welder"], villages=villages, near_prefix=near)
        )
        first = await prefilter.pool(
            session,
            prefilter.PoolQuery(exact=["welder"], villages=villages, near_prefix=near, limit=1),
        )
        related = await prefilter.pool(
            session,
            prefilter.PoolQuery(exact=["rebar_worker"], related=["welder"], villages=villages),
        )
        elsewhere = await prefilter.pool(
            session, prefilter.PoolQuery(exact=["welder"], villages=frozenset({s.other_village}))
        )
    assert sorted(whole) == sorted([s.worker_id, s.silent_worker_id])
    assert first == [s.silent_worker_id]  # verified just now
    assert sorted(related) == sorted(whole)  # the family counts too
    assert elsewhere == []

    monkeypatch.setattr(matches, "PoolQuery", partial(prefilter.PoolQuery, limit=1))
    seen, total = await listed(s, s.broker_a)  # the candidate list takes the same pick
    assert (list(seen), total) == ([s.silent_worker_id], 1)
