"""Import jobs (the page's background import) on both databases: progress committed
batch by batch, the report stored, one running job per broker, a job whose server
stopped shown as interrupted, and the same file re-run afterwards continuing it."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from marketplace.access import Actor
from marketplace.clock import utcnow
from marketplace.crypto import DataCipher
from marketplace.db import unit_of_work
from marketplace.errors import Conflict, Invalid, NotFound
from marketplace.workers import import_jobs, importing
from marketplace.workers.models import ImportJob, Worker, WorkerChange
from tests.marketplace.test_workers_import import csv_rows
from tests.web.test_workers_api import first_village

YUZHONG_VILLAGE_PREFIX = "500103"


def actor_of(account: Any) -> Actor:
    user = account.user
    return Actor(user.id, user.username, user.role, user.region_code)


@pytest.fixture
async def scene(
    sessions: async_sessionmaker[AsyncSession], make_account: Any, tmp_path: Path
) -> dict[str, Any]:
    village = await first_village(sessions, YUZHONG_VILLAGE_PREFIX)
    return {
        "village": village,
        "broker": actor_of(await make_account("broker", village)),
        "other": actor_of(await make_account("broker", village)),
        "dir": tmp_path,
    }


async def start(sessions: async_sessionmaker[AsyncSession], actor: Actor, path: Path) -> int:
    with path.open("rb") as stream:
        total = importing.count_rows(stream, "csv")
    async with unit_of_work(sessions) as session:
        job = await import_jobs.start(
            session=session, actor=actor, filename=path.name, file_format="csv", rows_total=total
        )
        assert job.id is not None
        return job.id


async def job_of(sessions: async_sessionmaker[AsyncSession], job_id: int) -> ImportJob:
    async with sessions() as session:
        job = await session.get(ImportJob, job_id)
        assert job is not None
        return job


async def test_job_commits_progress_per_batch_and_stores_the_report(
    scene: dict[str, Any], sessions: async_sessionmaker[AsyncSession], cipher: DataCipher
) -> None:
    text = csv_rows(scene["village"], 5)
    lines = text.splitlines()
    lines[3] = lines[3].replace(",1391234", ",139")  # row 4: a malformed phone
    path = scene["dir"] / "five.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    job_id = await start(sessions, scene["broker"], path)
    seen: list[tuple[int, int, int]] = []

    async def watch() -> None:
        # What another request (the page's poll) reads after each commit.
        job = await job_of(sessions, job_id)
        seen.append((job.rows_done, job.created, job.error_rows))

    pending: list[asyncio.Task[None]] = []
    await import_jobs.run(
        sessions=sessions,
        job_id=job_id,
        actor=scene["broker"],
        cipher=cipher,
        path=path,
        batch_size=2,
        after_commit=lambda: pending.append(asyncio.ensure_future(watch())),
    )
    await asyncio.gather(*pending)
    job = await job_of(sessions, job_id)
    assert job.status == "done"
    assert (job.rows_total, job.rows_done) == (5, 5)
    assert (job.created, job.updated, job.unchanged, job.error_rows) == (4, 0, 0, 1)
    assert job.errors == [{"row": 4, "column": "手机号", "message": job.errors[0]["message"]}]
    assert job.finished_at is not None
    assert not path.exists()  # the uploaded copy (personal data) is gone
    # A batch was visible before the import ended, and progress moves by whole batches
    # (which batch the poll catches depends on scheduling).
    assert any(done < 5 for done, _, _ in seen), seen
    assert {done for done, _, _ in seen} <= {2, 4, 5}, seen
    assert max(s[0] for s in seen) == 5
    async with sessions() as session:
        # One history row per created record, holding all its initial values.
        rows = await session.execute(
            select(func.count())
            .select_from(WorkerChange)
            .where(col(WorkerChange.action) == "create")
        )
        assert rows.scalar_one() == 4


async def test_stopped_job_is_interrupted_and_the_same_file_continues(
    scene: dict[str, Any], sessions: async_sessionmaker[AsyncSession], cipher: DataCipher
) -> None:
    text = csv_rows(scene["village"], 6)
    path = scene["dir"] / "six.csv"
    path.write_text(text, encoding="utf-8")
    job_id = await start(sessions, scene["broker"], path)

    # While it runs, a second upload by the same broker is refused.
    with pytest.raises(Conflict, match="已有一个导入正在进行"):
        await start(sessions, scene["broker"], path)

    def server_stops() -> None:  # the process dies after the first batch is committed
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await import_jobs.run(
            sessions=sessions,
            job_id=job_id,
            actor=scene["broker"],
            cipher=cipher,
            path=path,
            batch_size=2,
            after_commit=server_stops,
        )
    assert (await job_of(sessions, job_id)).status == "running"  # nobody marked it yet
    async with unit_of_work(sessions) as session:
        await session.execute(
            update(ImportJob)
            .where(col(ImportJob.id) == job_id)
            .values(heartbeat_at=utcnow() - import_jobs.STALE_AFTER - timedelta(seconds=1))
        )
    async with sessions() as session:  # a page's GET: reads, and must write nothing
        job = await import_jobs.get(session=session, actor=scene["broker"], job_id=job_id)
        assert job.status == "interrupted"
        assert job.message == import_jobs.INTERRUPTED
        assert (job.rows_done, job.created) == (2, 2)
        latest = await import_jobs.latest(session=session, actor=scene["broker"])
        assert latest is not None
        assert latest.status == "interrupted"
        assert not session.dirty
        assert not session.new
    # Recorded as interrupted by the next upload (a writing request), not by reading.
    assert (await job_of(sessions, job_id)).status == "running"
    async with unit_of_work(sessions) as session:
        with pytest.raises(NotFound):
            await import_jobs.get(session=session, actor=scene["other"], job_id=job_id)

    # The broker uploads the same file again: the first batch is unchanged.
    path.write_text(text, encoding="utf-8")
    again = await start(sessions, scene["broker"], path)
    await import_jobs.run(
        sessions=sessions, job_id=again, actor=scene["broker"], cipher=cipher, path=path
    )
    job = await job_of(sessions, again)
    assert (job.status, job.created, job.unchanged, job.error_rows) == ("done", 4, 2, 0)
    async with sessions() as session:
        assert (await session.execute(select(func.count()).select_from(Worker))).scalar_one() == 6
    async with unit_of_work(sessions) as session:
        latest = await import_jobs.latest(session=session, actor=scene["broker"])
        assert latest is not None
        assert latest.id == again


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_whole_file_errors_before_and_during_a_job(
    scene: dict[str, Any], sessions: async_sessionmaker[AsyncSession], cipher: DataCipher
) -> None:
    path = scene["dir"] / "bad.csv"
    path.write_text("姓名,手机号\n王建国,13912345678\n", encoding="utf-8")
    with path.open("rb") as stream, pytest.raises(Invalid, match="缺少必填列：身份证号"):
        importing.count_rows(stream, "csv")
    path.write_text("姓名,身份证号,户籍村代码\n", encoding="utf-8")
    with path.open("rb") as stream, pytest.raises(Invalid, match="没有数据行"):
        importing.count_rows(stream, "csv")
    # A file that changed between the check and the run fails the job with the reason.
    path.write_text(csv_rows(scene["village"], 1), encoding="utf-8")
    job_id = await start(sessions, scene["broker"], path)
    path.write_text("", encoding="utf-8")
    await import_jobs.run(
        sessions=sessions, job_id=job_id, actor=scene["broker"], cipher=cipher, path=path
    )
    job = await job_of(sessions, job_id)
    assert job.status == "failed"
    assert job.message is not None
    assert "文件是空的" in job.message
