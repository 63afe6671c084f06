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


GONE = 0  # fingerprint of a document that is not in the index
LOOKAHEAD = 1000  # pending events of the same kind indexed in one commit
MEMORY = 1_000_000  # fingerprints kept before forgetting them all


def fingerprint(doc: SearchDoc) -> int:
    return (
        hash(
            (
                doc.text,
                tuple(sorted((k, tuple(v)) for k, v in doc.keywords.items())),
                tuple(sorted(doc.numbers.items())),
            )
        )
        or 1
    )


class IndexSync:
    """The outbox handlers. Each event re-reads its row; to keep up with bursts (an
    import emits one ``worker.changed`` per row) a handler also indexes the rows of up
    to ``LOOKAHEAD`` later pending events of the same kind in the same commit, and
    remembers what it committed, so those events, when delivered, find their document
    already current and write nothing. Every event still checks its own row, so
    at-least-once delivery keeps the index right."""

    def __init__(self, backend: SearchBackend) -> None:
        self.backend = backend
        self.committed: dict[tuple[str, int], int] = {}

    async def _pending(self, session: AsyncSession, event: OutboxEvent, key: str) -> list[int]:
        payloads = await session.execute(
            select(col(OutboxEvent.payload))
            .where(
                col(OutboxEvent.name) == event.name,
                col(OutboxEvent.processed_at).is_(None),
                col(OutboxEvent.id) > event.id,
            )
            .order_by(col(OutboxEvent.id))
            .limit(LOOKAHEAD)
        )
        return [int(p[key]) for p in payloads.scalars() if isinstance(p, dict) and key in p]

    async def apply(self, spec: IndexSpec, ids: Sequence[int], docs: list[SearchDoc]) -> int:
        """Write what differs from what this process last committed; returns the count."""
        if len(self.committed) > MEMORY:
            self.committed.clear()
        found = {d.id: d for d in docs}
        changed = [d for d in docs if self.committed.get((spec.name, d.id)) != fingerprint(d)]
        gone = [
            i
            for i in dict.fromkeys(ids)
            if i not in found and self.committed.get((spec.name, i)) != GONE
        ]
        await self.backend.upsert(spec, changed)
        await self.backend.delete(spec, gone)
        for d in changed:
            self.committed[(spec.name, d.id)] = fingerprint(d)
        for i in gone:
            self.committed[(spec.name, i)] = GONE
        return len(changed) + len(gone)

    async def on_worker(self, session: AsyncSession, event: OutboxEvent) -> None:
        first = int(event.payload["worker_id"])
        ids = [first, *await self._pending(session, event, "worker_id")]
        await self.apply(WORKERS, ids, await worker_documents(session, ids))

    async def on_job(self, session: AsyncSession, event: OutboxEvent) -> None:
        first = int(event.payload["job_id"])
        ids = [first, *await self._pending(session, event, "job_id")]
        await self.apply(JOBS, ids, await job_documents(session, ids))

    def forget(self) -> None:
        """After a rebuild the index holds exactly the database: nothing to remember."""
        self.committed.clear()


async def worker_documents(session: AsyncSession, ids: Sequence[int]) -> list[SearchDoc]:
    rows = (
        (await session.execute(select(*WORKER_COLUMNS).where(col(Worker.id).in_(ids))))
        .mappings()
        .all()
    )
    names = Names()
    await names.load_regions(
        session, [r["hukou_village_code"] for r in rows] + [r["current_region_code"] for r in rows]
    )
    return [d for r in rows if (d := worker_document(r, names)) is not None]


async def job_documents(session: AsyncSession, ids: Sequence[int]) -> list[SearchDoc]:
    rows = (
        (await session.execute(select(*JOB_COLUMNS).where(col(Job.id).in_(ids)))).mappings().all()
    )
    names = Names()
    await names.load_regions(session, [r["work_region_code"] for r in rows])
    await names.load_organizations(session, [r["organization_id"] for r in rows])
    return [d for r in rows if (d := job_document(r, names)) is not None]


def handlers(backend: SearchBackend) -> dict[str, Handler]:
    """Outbox handlers by event name (docs/events.md)."""
    sync = IndexSync(backend)
    return {"worker.changed": sync.on_worker, "job.changed": sync.on_job}


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
