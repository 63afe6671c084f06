"""The index follows the database through the outbox, in bursts too, and a rebuild
gives the same index as the events did."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlmodel import col

from bench.scale_data import generate
from marketplace.db import create_engine, session_factory, unit_of_work
from marketplace.dispatcher import Registry, drain
from marketplace.events import emit
from marketplace.jobs.models import Job
from marketplace.workers.models import Worker
from matching.search import JOBS, WORKERS, SearchDoc, SearchQuery
from matching.search.base import IndexSpec
from matching.search.embedded import EmbeddedBackend
from matching.search.sync import handlers, rebuild_jobs, rebuild_workers
from tests.web.test_cli import db_env, env, run

__all__ = ["db_env", "env"]  # fixtures shared with the CLI tests


class CountingBackend(EmbeddedBackend):
    writes = 0

    async def upsert(self, spec: IndexSpec, docs: Sequence[SearchDoc]) -> None:
        self.writes += bool(docs)
        await super().upsert(spec, docs)


async def test_bursts_are_indexed_in_few_commits_and_match_a_rebuild(
    db_url: str, tmp_path: Path
) -> None:
    await generate(db_url, workers=120, jobs=40, seed=3)
    engine = create_engine(db_url)
    sessions = session_factory(engine)
    try:
        async with unit_of_work(sessions) as session:
            for worker_id in (await session.execute(select(col(Worker.id)))).scalars():
                await emit(session, "worker.changed", {"worker_id": worker_id, "action": "create"})
            for job_id in (await session.execute(select(col(Job.id)))).scalars():
                await emit(session, "job.changed", {"job_id": job_id, "action": "create"})
            published = (
                await session.execute(
                    select(func.count()).select_from(Job).where(col(Job.status) == "published")
                )
            ).scalar_one()
        backend = CountingBackend(tmp_path / "search")
        registry = Registry()
        for name, handler in handlers(backend).items():
            registry.subscribe(name, "search", handler)
        await drain(sessions, registry)
        assert await backend.count(WORKERS) == 120
        assert await backend.count(JOBS) == published  # drafts, closed… are not searchable
        assert backend.writes <= 2  # one commit per burst, not one per event

        # A job closed and a worker deleted leave the index with their events.
        async with unit_of_work(sessions) as session:
            job_id = (
                await session.execute(
                    select(col(Job.id)).where(col(Job.status) == "published").limit(1)
                )
            ).scalar_one()
            await session.execute(update(Job).where(col(Job.id) == job_id).values(status="closed"))
            await emit(session, "job.changed", {"job_id": job_id, "action": "close"})
            await session.execute(
                update(Worker).where(col(Worker.id) == 1).values(deleted_at=func.now())
            )
            await emit(session, "worker.changed", {"worker_id": 1, "action": "delete"})
        await drain(sessions, registry)
        assert await backend.count(JOBS) == published - 1
        assert await backend.count(WORKERS) == 119
        hits = await backend.search(WORKERS, SearchQuery(limit=500))
        assert 1 not in hits.ids

        # A rebuild from the database gives the same documents.
        fresh = EmbeddedBackend(tmp_path / "rebuilt")
        async with sessions() as session:
            assert await rebuild_workers(session, fresh, batch=50) == 119
            assert await rebuild_jobs(session, fresh, batch=7) == published - 1
        for text in ("工", "焊工", "万州", "普工"):
            query: Any = SearchQuery(text=text, limit=500)
            assert sorted((await fresh.search(WORKERS, query)).ids) == sorted(
                (await backend.search(WORKERS, query)).ids
            )
            assert sorted((await fresh.search(JOBS, query)).ids) == sorted(
                (await backend.search(JOBS, query)).ids
            )
    finally:
        await engine.dispose()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_laowu_index_rebuild(db_env: str, env: dict[str, str]) -> None:
    asyncio.run(generate(db_env, workers=30, jobs=12, seed=9))
    result = run("index", "rebuild")
    assert result.exit_code == 0, result.output
    assert "劳动者索引已重建：30 条" in result.stdout
    assert "岗位索引已重建" in result.stdout
    backend = EmbeddedBackend(Path(env["LAOWU_VAR_DIR"]) / "search")
    assert asyncio.run(backend.count(WORKERS)) == 30
    result = run("index", "rebuild", "--only", "workers")
    assert result.exit_code == 0, result.output
    assert "岗位" not in result.stdout


async def test_a_backlog_reads_each_row_a_bounded_number_of_times(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a crash the outbox holds thousands of ``worker.changed`` events. Each row
    is read about once, not once per later event within the lookahead (which took a
    1,200-event backlog four minutes to drain; found by tests/resilience)."""
    from matching.search import sync

    await generate(db_url, workers=150, jobs=0, seed=5)
    engine = create_engine(db_url)
    sessions = session_factory(engine)
    read: list[int] = []
    real = sync.worker_documents

    async def counting(session: Any, ids: Sequence[int]) -> list[SearchDoc]:
        read.extend(ids)
        return await real(session, ids)

    monkeypatch.setattr(sync, "worker_documents", counting)
    try:
        async with unit_of_work(sessions) as session:
            ids = list((await session.execute(select(col(Worker.id)))).scalars())
            for _ in range(8):  # 1,200 events
                for worker_id in ids:
                    await emit(session, "worker.changed", {"worker_id": worker_id})
        backend = EmbeddedBackend(tmp_path / "search")
        registry = Registry()
        for name, handler in handlers(backend).items():
            registry.subscribe(name, "search", handler)
        await drain(sessions, registry)
        assert await backend.count(WORKERS) == 150
        assert len(read) <= 2 * 8 * 150  # its own row per event, plus each row once ahead

        # A change after its row was looked ahead is still indexed by its own event.
        async with unit_of_work(sessions) as session:
            await session.execute(
                update(Worker).where(col(Worker.id) == ids[0]).values(name="改名甲乙")
            )
            await emit(session, "worker.changed", {"worker_id": ids[0]})
        await drain(sessions, registry)
        hits = await backend.search(WORKERS, SearchQuery(text="改名甲乙", limit=5))
        assert hits.ids == [ids[0]]
    finally:
        await engine.dispose()


async def test_two_processes_draining_leave_no_stale_document(db_url: str, tmp_path: Path) -> None:
    """Two drainers (two `laowu serve` processes, or one and `laowu worker`) share one
    index. A worker renamed back to an earlier name must not be skipped by the process
    that indexed that name before, while the other one indexed the name in between."""
    await generate(db_url, workers=3, jobs=0, seed=7)
    engine = create_engine(db_url)
    sessions = session_factory(engine)
    backend = EmbeddedBackend(tmp_path / "search")
    first, second = Registry(), Registry()
    for registry in (first, second):
        for name, handler in handlers(backend).items():  # one IndexSync per process
            registry.subscribe(name, "search", handler)

    async def rename(to: str, registry: Registry) -> None:
        async with unit_of_work(sessions) as session:
            await session.execute(update(Worker).where(col(Worker.id) == 1).values(name=to))
            await emit(session, "worker.changed", {"worker_id": 1})
        await drain(sessions, registry)

    try:
        await rename("甲乙丙", first)
        await rename("丁戊己", second)
        await rename("甲乙丙", first)
        assert (await backend.search(WORKERS, SearchQuery(text="甲乙丙", limit=5))).ids == [1]
        assert (await backend.search(WORKERS, SearchQuery(text="丁戊己", limit=5))).ids == []
    finally:
        await engine.dispose()
