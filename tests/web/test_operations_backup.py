"""``laowu backup`` / ``laowu restore`` and the restore drill (docs/operations.md):
back up while a writer writes, restore elsewhere, and the audit chain and the ledger
must hold there."""

from __future__ import annotations

import asyncio
import itertools
import os
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing.models import Appropriation
from marketplace.crypto import DataCipher
from marketplace.db import create_engine, session_factory
from marketplace.workers.models import Worker
from tests.billing.helpers import check_ledger_invariants, finance, fund
from tests.conftest import PG_ENV, TEST_DATA_KEY, _pg_admin, _with_database
from tests.tasks.support import VILLAGE, add_workers
from web import cli
from web.ops import backup as ops
from web.settings import Settings, get_settings

_keys = itertools.count()


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("LAOWU_") and name != PG_ENV:
            monkeypatch.delenv(name)
    monkeypatch.setenv("LAOWU_ENV", "development")
    monkeypatch.setenv("LAOWU_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("LAOWU_DATA_KEY", TEST_DATA_KEY)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def run(*args: str, **env: str) -> Result:
    previous = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(cli.main, list(args), catch_exceptions=False)
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        get_settings.cache_clear()


async def _count(url: str, model: Any) -> int:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            return int(
                (await session.execute(select(func.count()).select_from(model))).scalar_one()
            )
    finally:
        await engine.dispose()


async def _invariants(url: str) -> None:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            await check_ledger_invariants(session)
    finally:
        await engine.dispose()


async def _seed(
    sessions: async_sessionmaker[AsyncSession], cipher: DataCipher, make_account: Any
) -> None:
    keeper = await make_account("broker", VILLAGE)
    officer = await make_account("finance", "500103")
    await add_workers(sessions, cipher, keeper, VILLAGE, 5)
    for _ in range(3):
        await fund(
            sessions,
            "500103",
            "employment_subsidy",
            100_000,
            key=f"seed-{next(_keys)}",
            actor=finance(officer.id),
        )


async def _writer(
    sessions: async_sessionmaker[AsyncSession], going: asyncio.Event, stop: asyncio.Event
) -> int:
    """Appropriations (ledger entries, audit rows, events) as fast as they commit."""
    written = 0
    while not stop.is_set():
        key = f"w-{next(_keys)}"
        await fund(sessions, "500103", "employment_subsidy", 1_000, key=key, actor=finance(None))
        written += 1
        if written == 3:
            going.set()
        await asyncio.sleep(0)
    return written


async def _backup_while_writing(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], target: Path
) -> tuple[int, int, int]:
    """(committed before the backup began, written during it, committed after)."""
    going, stop = asyncio.Event(), asyncio.Event()
    writer = asyncio.create_task(_writer(sessions, going, stop))
    await going.wait()
    before = await _count(settings.db.url, Appropriation)
    await asyncio.to_thread(ops.backup, settings.db.url, settings.media_dir, target)
    stop.set()
    during = await writer
    after = await _count(settings.db.url, Appropriation)
    return before, during, after


async def test_restore_drill(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    cipher: DataCipher,
    make_account: Any,
    db_url: str,
    tmp_path: Path,
    cli_env: None,
) -> None:
    source = ops.sqlite_path(db_url)
    reader = None
    if source is not None:
        # A reader (as a server's idle connection would) holding a snapshot from before
        # anything below: no checkpoint can move later frames into the main file, so
        # every worker and ledger entry of this test lives only in the WAL, and the
        # restored database has them only if the backup read the WAL.
        reader = sqlite3.connect(source, isolation_level=None)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM region").fetchone()
    await _seed(sessions, cipher, make_account)
    evidence = settings.media_dir / "evidence" / "1" / "photo.jpg"
    evidence.parent.mkdir(parents=True)
    evidence.write_bytes(b"\xff\xd8 a photo")

    target = tmp_path / "backups" / "laowu.backup"
    before, during, after = await _backup_while_writing(settings, sessions, target)
    assert during > 0
    assert after > before

    if source is not None:
        restored_url = f"sqlite+aiosqlite:///{tmp_path / 'restored' / 'laowu.db'}"
    else:
        name = f"laowu_restore_{uuid.uuid4().hex[:8]}"
        await _pg_admin(db_url, f'CREATE DATABASE "{name}"')
        restored_url = _with_database(db_url, name)
        # Restoring over a database that has tables is refused and changes nothing.
        refused = await asyncio.to_thread(run, "restore", str(target), LAOWU_DATABASE_URL=db_url)
        assert refused.exit_code == 1
        assert "不是空库" in refused.stderr
    media = tmp_path / "restored-media"
    env = {"LAOWU_DATABASE_URL": restored_url, "LAOWU_MEDIA_DIR": str(media)}
    try:
        done = await asyncio.to_thread(run, "restore", str(target), **env)
        assert done.exit_code == 0, done.output
        verified = await asyncio.to_thread(run, "audit", "verify", **env)
        assert verified.exit_code == 0, verified.output
        assert "审计日志完好" in verified.stdout

        restored = await _count(restored_url, Appropriation)
        # One consistent snapshot: everything committed before the copy began, and
        # nothing the writer had not committed.
        assert before <= restored <= after
        assert await _count(restored_url, Worker) == 5
        await _invariants(restored_url)
        assert (media / "evidence" / "1" / "photo.jpg").read_bytes() == b"\xff\xd8 a photo"
    finally:
        if reader is not None:
            reader.close()
        if source is None:
            await _pg_admin(db_url, f'DROP DATABASE IF EXISTS "{restored_url.rsplit("/", 1)[1]}"')


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_backup_leaves_out_an_uncommitted_write(db_url: str, tmp_path: Path) -> None:
    """A writer holding the write lock mid-transaction does not block the backup, and
    its uncommitted row is not in the copy."""
    path = ops.sqlite_path(db_url)
    assert path is not None
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("BEGIN IMMEDIATE")
    writer.execute(
        "INSERT INTO outbox_event (name, payload, created_at) VALUES ('x', '{}', '2026')"
    )
    try:
        ops.backup_sqlite(path, tmp_path / "copy.db")
    finally:
        writer.execute("COMMIT")
        writer.close()
    copy = sqlite3.connect(tmp_path / "copy.db")
    try:
        assert copy.execute("SELECT count(*) FROM outbox_event WHERE name = 'x'").fetchone() == (0,)
        assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    finally:
        copy.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_restore_refuses_a_database_in_use(db_url: str, tmp_path: Path, cli_env: None) -> None:
    path = ops.sqlite_path(db_url)
    assert path is not None
    assert run("backup", str(tmp_path / "b.db"), LAOWU_DATABASE_URL=db_url).exit_code == 0
    server = sqlite3.connect(path)  # stands for a running laowu serve
    server.execute("PRAGMA journal_mode=WAL")
    server.execute("SELECT count(*) FROM region").fetchone()
    try:
        refused = run("restore", str(tmp_path / "b.db"), LAOWU_DATABASE_URL=db_url)
        assert refused.exit_code == 1
        assert "正被服务或 worker 打开" in refused.stderr
        forced = run("restore", "--force", str(tmp_path / "b.db"), LAOWU_DATABASE_URL=db_url)
        assert forced.exit_code == 0, forced.output
    finally:
        server.close()
    assert not ops.sqlite_in_use(path)
    check = sqlite3.connect(path)
    try:
        assert check.execute("PRAGMA quick_check").fetchone() == ("ok",)
    finally:
        check.close()


def test_restore_refuses_a_file_that_is_not_a_backup(tmp_path: Path, cli_env: None) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    url = f"sqlite+aiosqlite:///{tmp_path / 'target.db'}"
    result = run("restore", str(junk), LAOWU_DATABASE_URL=url)
    assert result.exit_code == 1
    assert "不是可用的 SQLite 备份" in result.stderr
    assert not (tmp_path / "target.db").exists()


def test_postgres_backup_without_pg_dump_is_a_clear_error(
    tmp_path: Path, cli_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    result = run(
        "backup",
        str(tmp_path / "b.dump"),
        LAOWU_DATABASE_URL="postgresql+asyncpg://postgres@127.0.0.1:5432/laowu",
    )
    assert result.exit_code == 1
    assert "找不到 pg_dump" in result.stderr
    assert not (tmp_path / "b.dump").exists()
