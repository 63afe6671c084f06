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


LOOKAHEAD = 1000  # pending events of the same kind indexed in one commit
MEMORY = 1_000_000  # rows remembered before forgetting them all


class IndexSync:
    """The outbox handlers. Each event re-reads its row; to keep up with bursts (an
    import emits one ``worker.changed`` per row) a handler also indexes the rows of up
    to ``LOOKAHEAD`` later pending events of the same kind in the same commit, and
    remembers, per row, the newest event its indexed document already reflects
    (``covered``: the row was read after that event committed). Those later events,
    when delivered, find themselves covered and write nothing; an event not covered by
    this process re-reads its row and writes it, whatever this process wrote before,
    since another process (a second ``laowu serve``, ``laowu worker``) may have written
    the document since. On SQLite the whole delivery holds the write lock, so documents
    are written in commit order.

    A row indexed by lookahead is not read again by the next events' lookahead
    (``covered``, and ``scanned``: how far this process has looked ahead; an event
    below that mark that was not yet visible then is still delivered, and re-reads its
    own row). Without that a backlog of n events read about n × LOOKAHEAD rows (found
    by the fault drills: 1,200 pending events after a crash took four minutes to drain;
    tests/resilience). Remembering fingerprints instead (what this process last wrote)
    left a document stale when another process wrote in between (a worker renamed and
    renamed back)."""

    def __init__(self, backend: SearchBackend) -> None:
        self.backend = backend
        self.covered: dict[tuple[str, int], int] = {}
        self.scanned: dict[str, int] = {}  # by event name: the last event id looked ahead to

    async def _pending(
        self, session: AsyncSession, spec: IndexSpec, event: OutboxEvent, key: str
    ) -> dict[int, int]:
        """Rows named by later pending events that this process has not indexed since
        those events: {row id: newest such event id}."""
        found = await session.execute(
            select(col(OutboxEvent.id), col(OutboxEvent.payload))
            .where(
                col(OutboxEvent.name) == event.name,
                col(OutboxEvent.processed_at).is_(None),
                col(OutboxEvent.id) > max(event.id or 0, self.scanned.get(event.name, 0)),
            )
            .order_by(col(OutboxEvent.id))
            .limit(LOOKAHEAD)
        )
        rows: dict[int, int] = {}
        for event_id, payload in found.all():
            self.scanned[event.name] = max(self.scanned.get(event.name, 0), event_id)
            if not isinstance(payload, dict) or key not in payload:
                continue
            row_id = int(payload[key])
            if self.covered.get((spec.name, row_id), 0) < event_id:
                rows[row_id] = event_id
        return rows

    async def _sync(
        self,
        session: AsyncSession,
        spec: IndexSpec,
        event: OutboxEvent,
        key: str,
        documents: Callable[[AsyncSession, Sequence[int]], Awaitable[list[SearchDoc]]],
    ) -> None:
        assert event.id is not None
        first = int(event.payload[key])
        if self.covered.get((spec.name, first), 0) >= event.id:
            return  # indexed by this process after this event: a later change has its own
        if len(self.covered) > MEMORY:
            self.forget()
        later = await self._pending(session, spec, event, key)
        reflects = {**later, first: max(event.id, later.get(first, 0))}
        ids = [first, *(i for i in later if i != first)]
        await self.apply(spec, ids, await documents(session, ids))
        for row_id, event_id in reflects.items():
            if self.covered.get((spec.name, row_id), 0) < event_id:
                self.covered[(spec.name, row_id)] = event_id

    async def apply(self, spec: IndexSpec, ids: Sequence[int], docs: list[SearchDoc]) -> int:
        """Write ``docs`` and delete the ``ids`` that have none; returns the count."""
        found = {d.id for d in docs}
        gone = [i for i in dict.fromkeys(ids) if i not in found]
        await self.backend.upsert(spec, docs)
        await self.backend.delete(spec, gone)
        return len(docs) + len(gone)

    async def on_worker(self, session: AsyncSession, event: OutboxEvent) -> None:
        await self._sync(session, WORKERS, event, "worker_id", worker_documents)

    async def on_job(self, session: AsyncSession, event: OutboxEvent) -> None:
        await self._sync(session, JOBS, event, "job_id", job_documents)

    def forget(self) -> None:
        """Forget what was covered (memory bound): events then re-read their rows."""
        self.covered.clear()
        self.scanned.clear()


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
