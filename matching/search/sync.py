"""Keeping the index in step with the database: outbox handlers and full rebuilds.

Handlers (wired in ``web/wiring.py``) re-read the row named by a ``worker.changed``
or ``job.changed`` event and upsert its document, or delete it when the worker is
deleted or the job is not published (closed, filled, expired, back in review). They
are idempotent, so the outbox's at-least-once delivery is safe. ``rebuild`` streams
every row by id in batches into the backend's ``rebuild``. See docs/search.md.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace.events import OutboxEvent
from marketplace.jobs.models import Job, JobStatus
from marketplace.workers.models import Worker
from matching.search.base import JOBS, WORKERS, IndexSpec, SearchBackend, SearchDoc
from matching.search.documents import (
    JOB_COLUMNS,
    WORKER_COLUMNS,
    Names,
    job_document,
    worker_document,
)

Handler = Callable[[AsyncSession, OutboxEvent], Coroutine[Any, Any, None]]
REBUILD_BATCH = 5000


async def _apply(
    backend: SearchBackend,
    spec: IndexSpec,
    ids: Sequence[int],
    docs: list[SearchDoc],
) -> None:
    found = {d.id for d in docs}
    await backend.upsert(spec, docs)
    await backend.delete(spec, [i for i in ids if i not in found])


async def index_workers(session: AsyncSession, backend: SearchBackend, ids: Sequence[int]) -> None:
    rows = (
        (await session.execute(select(*WORKER_COLUMNS).where(col(Worker.id).in_(ids))))
        .mappings()
        .all()
    )
    names = Names()
    await names.load_regions(
        session, [r["hukou_village_code"] for r in rows] + [r["current_region_code"] for r in rows]
    )
    docs = [d for r in rows if (d := worker_document(r, names)) is not None]
    await _apply(backend, WORKERS, ids, docs)


async def index_jobs(session: AsyncSession, backend: SearchBackend, ids: Sequence[int]) -> None:
    rows = (
        (await session.execute(select(*JOB_COLUMNS).where(col(Job.id).in_(ids)))).mappings().all()
    )
    names = Names()
    await names.load_regions(session, [r["work_region_code"] for r in rows])
    await names.load_organizations(session, [r["organization_id"] for r in rows])
    docs = [d for r in rows if (d := job_document(r, names)) is not None]
    await _apply(backend, JOBS, ids, docs)


def handlers(backend: SearchBackend) -> dict[str, Handler]:
    """Outbox handlers by event name (docs/events.md)."""

    async def on_worker(session: AsyncSession, event: OutboxEvent) -> None:
        await index_workers(session, backend, [int(event.payload["worker_id"])])

    async def on_job(session: AsyncSession, event: OutboxEvent) -> None:
        await index_jobs(session, backend, [int(event.payload["job_id"])])

    return {"worker.changed": on_worker, "job.changed": on_job}


async def _stream(
    session: AsyncSession,
    model: Any,
    columns: Sequence[Any],
    where: Sequence[Any],
    build: Callable[[Any], Awaitable[list[SearchDoc]]],
    batch: int,
) -> AsyncIterator[list[SearchDoc]]:
    """Rows by id, ``batch`` at a time (keyset paging: memory stays bounded)."""
    last = 0
    while True:
        rows = (
            (
                await session.execute(
                    select(*columns)
                    .where(col(model.id) > last, *where)
                    .order_by(col(model.id))
                    .limit(batch)
                )
            )
            .mappings()
            .all()
        )
        if not rows:
            return
        last = int(rows[-1]["id"])
        yield await build(rows)


async def rebuild_workers(
    session: AsyncSession, backend: SearchBackend, *, batch: int = REBUILD_BATCH
) -> int:
    names = Names()
    await names.load_all_regions(session)

    async def build(rows: Any) -> list[SearchDoc]:
        return [d for r in rows if (d := worker_document(r, names)) is not None]

    return await backend.rebuild(
        WORKERS,
        _stream(session, Worker, WORKER_COLUMNS, [col(Worker.deleted_at).is_(None)], build, batch),
    )


async def rebuild_jobs(
    session: AsyncSession, backend: SearchBackend, *, batch: int = REBUILD_BATCH
) -> int:
    names = Names()
    await names.load_all_regions(session)

    async def build(rows: Any) -> list[SearchDoc]:
        await names.load_organizations(session, [r["organization_id"] for r in rows])
        return [d for r in rows if (d := job_document(r, names)) is not None]

    return await backend.rebuild(
        JOBS,
        _stream(session, Job, JOB_COLUMNS, [col(Job.status) == JobStatus.published], build, batch),
    )
