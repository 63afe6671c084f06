"""Imports started from the page, run in the background with their progress stored
(docs/workers.md, "Import progress on the page").

``start`` records a job (the caller commits it before launching ``run``); ``run``
imports the file in its own session, committing each batch together with the job's
progress, and records the report. A job whose heartbeat stops (the server stopped
mid-import) is shown as interrupted; what its finished batches stored stays, and
re-running the same file continues idempotently.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from marketplace.access import Actor
from marketplace.clock import utcnow
from marketplace.crypto import DataCipher
from marketplace.db import begin_write
from marketplace.errors import Conflict, DomainError, NotFound
from marketplace.workers import importing, scope
from marketplace.workers import service as workers
from marketplace.workers.models import ImportJob, ImportJobStatus

log = logging.getLogger(__name__)

# A running job's heartbeat is written with every batch (about a second apart); one
# silent this long belongs to a server that stopped.
STALE_AFTER = timedelta(seconds=60)
# Smaller batches than the CLI's: the page's progress moves every few hundred rows, for
# a little more overhead (a commit and an audit entry per batch).
JOB_BATCH_SIZE = 250
SQLITE_PAUSE = 0.02  # seconds between batches on SQLite
INTERRUPTED = (
    "导入中断（服务器在导入过程中停止）。已完成的部分已保存；"
    "请重新上传同一文件继续，已导入的行不会重复。"
)
FAILED = "导入出错，已完成的部分已保存；请稍后重新上传同一文件，已导入的行不会重复。"


def is_stale(job: ImportJob) -> bool:
    return job.status == ImportJobStatus.running and job.heartbeat_at < utcnow() - STALE_AFTER


def _mark_if_stale(session: AsyncSession, job: ImportJob) -> ImportJob:
    """Record a stale running job as interrupted (a writing request: ``start``)."""
    if is_stale(job):
        _interrupted(job)
        session.add(job)
    return job


def _shown(session: AsyncSession, job: ImportJob) -> ImportJob:
    """A job as a reading request shows it: a stale running one as interrupted, without
    writing. A page's GET must not write: on SQLite a read transaction that then writes
    fails at once while another process writes (the outbox after a restart, found by
    the fault drills: the import page answered 503 right after a crash). ``start``
    records the interruption when the broker uploads again."""
    if is_stale(job):
        session.expunge(job)
        _interrupted(job)
    return job


def _interrupted(job: ImportJob) -> None:
    job.status = ImportJobStatus.interrupted
    job.message = INTERRUPTED
    job.finished_at = utcnow()


async def start(
    *, session: AsyncSession, actor: Actor, filename: str, file_format: str, rows_total: int
) -> ImportJob:
    """A new job for the actor's own register; one running job per broker at a time."""
    reach = await scope.reach(session, actor, "worker.edit")
    assert reach.broker_id is not None
    running = await _latest(session, reach.broker_id)
    if running is not None and _mark_if_stale(session, running).status == ImportJobStatus.running:
        raise Conflict(
            f"您已有一个导入正在进行（{running.filename}），请等它完成后再上传",
            field="file",
        )
    job = ImportJob(
        broker_id=reach.broker_id,
        user_id=actor.user_id,
        filename=filename[:255],
        file_format=file_format,
        rows_total=rows_total,
    )
    session.add(job)
    await session.flush()
    return job


async def _latest(session: AsyncSession, broker_id: int) -> ImportJob | None:
    return (
        await session.execute(
            select(ImportJob)
            .where(col(ImportJob.broker_id) == broker_id)
            .order_by(col(ImportJob.id).desc())
            .limit(1)
        )
    ).scalar_one_or_none()


async def latest(*, session: AsyncSession, actor: Actor) -> ImportJob | None:
    """The actor's broker's most recent job (a stale running one marked interrupted)."""
    reach = await scope.reach(session, actor, "worker.edit")
    assert reach.broker_id is not None
    job = await _latest(session, reach.broker_id)
    return _shown(session, job) if job else None


async def get(*, session: AsyncSession, actor: Actor, job_id: int) -> ImportJob:
    """A job of the actor's broker; another broker's is reported as absent."""
    reach = await scope.reach(session, actor, "worker.edit")
    job = await session.get(ImportJob, job_id)
    if job is None or job.broker_id != reach.broker_id:
        raise NotFound(f"导入任务 {job_id} 不存在", field="job_id")
    return _shown(session, job)


def _progress(job: ImportJob, report: importing.ImportReport, rows_done: int) -> None:
    job.rows_done = rows_done
    job.created, job.updated, job.unchanged = report.created, report.updated, report.unchanged
    job.error_rows = report.error_rows
    job.heartbeat_at = utcnow()


async def run(
    *,
    sessions: async_sessionmaker[AsyncSession],
    job_id: int,
    actor: Actor,
    cipher: DataCipher,
    path: Path,
    occupations: workers.OccupationMapper | None = None,
    after_commit: Callable[[], Any] | None = None,
    batch_size: int = JOB_BATCH_SIZE,
) -> None:
    """Import ``path`` for job ``job_id``: each batch is committed with the job's
    progress (``after_commit`` runs after each commit: the server wakes its outbox);
    the file is deleted at the end, whatever happened."""
    report = importing.ImportReport()
    try:
        async with sessions() as session:
            await begin_write(session)
            found = await session.get(ImportJob, job_id)
            assert found is not None
            job: ImportJob = found
            done = [0]
            sqlite = session.bind is not None and session.bind.dialect.name == "sqlite"

            async def commit(session: AsyncSession) -> None:
                _progress(job, report, done[0])
                session.add(job)
                await session.commit()
                if sqlite:
                    # SQLite has one writer: leave a gap so other users' saves (waiting
                    # on the busy timeout) get in between batches instead of starving.
                    await asyncio.sleep(SQLITE_PAUSE)
                await begin_write(session)
                if after_commit:
                    after_commit()

            try:
                with path.open("rb") as stream:
                    await importing.import_workers(
                        session=session,
                        actor=actor,
                        cipher=cipher,
                        stream=stream,
                        file_format=job.file_format,
                        occupations=occupations,
                        on_progress=lambda rows: done.__setitem__(0, rows),
                        on_batch=commit,
                        batch_size=batch_size,
                        report=report,
                    )
            except Exception as exc:  # the batches committed so far stay, as on the CLI
                await session.rollback()
                await begin_write(session)
                # Reloaded: its counts are those of the committed batches.
                await session.refresh(job)
                if isinstance(exc, DomainError):
                    job.message = exc.message[:500]
                else:
                    log.exception("import job %s failed", job_id)
                    job.message = FAILED
                job.status = ImportJobStatus.failed
            else:
                _progress(job, report, done[0])
                job.status = ImportJobStatus.done
                job.rows_total = done[0]
            job.errors = [e.model_dump() for e in report.errors]
            job.finished_at = utcnow()
            session.add(job)
            await session.commit()
            if after_commit:
                after_commit()
    finally:
        await asyncio.to_thread(path.unlink, missing_ok=True)
