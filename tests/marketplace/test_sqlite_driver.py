"""SQLite reads and row writes in the event loop's thread, everything that may wait for
a lock in the connection's own thread (marketplace/sqlite_driver.py)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from marketplace import sqlite_driver
from marketplace.db import create_engine, session_factory, unit_of_work


def _add_which_thread(dbapi_connection: Any, _record: Any) -> None:
    """SQL function ``which_thread()``: the thread that runs the statement."""
    dbapi_connection.create_function("which_thread", 0, threading.get_ident)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'd.db'}")
    event.listen(engine.sync_engine, "connect", _add_which_thread)
    async with unit_of_work(session_factory(engine)) as session:
        await session.execute(text("CREATE TABLE t (n INTEGER, thread INTEGER)"))
    try:
        yield engine
    finally:
        await engine.dispose()


async def _read_thread(engine: AsyncEngine) -> int:
    async with session_factory(engine)() as session:
        return int((await session.execute(text("SELECT which_thread()"))).scalar_one())


async def test_reads_and_row_writes_run_on_the_loop(engine: AsyncEngine) -> None:
    async with unit_of_work(session_factory(engine)) as session:
        await session.execute(text("INSERT INTO t VALUES (1, which_thread())"))
        await session.execute(text("UPDATE t SET n = 2 WHERE thread = which_thread()"))
    async with session_factory(engine)() as session:
        stored = (await session.execute(text("SELECT n, thread FROM t"))).all()
    loop_thread = threading.get_ident()
    assert await _read_thread(engine) == loop_thread
    assert [tuple(row) for row in stored] == [(2, loop_thread)]


async def test_a_write_hands_only_its_commit_to_the_thread(engine: AsyncEngine) -> None:
    """Under load every hand-off to the connection's thread waits behind the requests
    the loop has ready (two seconds a write at 115 requests/s before this): a unit of
    work of several statements hands over its commit only."""
    sessions = session_factory(engine)
    async with unit_of_work(sessions) as session:
        connection = await session.connection()
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert isinstance(driver, sqlite_driver.Connection)
        handed = driver._handed
        for n in range(5):
            await session.execute(text("INSERT INTO t (n) VALUES (:n)"), {"n": n})
        await session.execute(text("DELETE FROM t WHERE n = 0"))
        async with session.begin_nested():  # as the outbox runs each handler
            await session.execute(text("INSERT INTO t (n) VALUES (5)"))
        nested = await session.begin_nested()
        await session.execute(text("INSERT INTO t (n) VALUES (6)"))
        await nested.rollback()
        assert driver._handed == handed
    assert driver._handed == handed + 1
    async with sessions() as session:
        assert list((await session.execute(text("SELECT n FROM t ORDER BY n"))).scalars()) == [
            1,
            2,
            3,
            4,
            5,
        ]


async def test_a_write_that_would_wait_for_the_lock_runs_once_in_the_thread(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite answers busy before a statement changes anything; the statement is then
    run in the thread, once: the row is stored once, by the connection's thread."""
    real = sqlite_driver.Connection.run_here
    refused: list[str] = []

    def busy_for_inserts(self: Any, cursor: Any, statement: str, parameters: Any) -> list[Any]:
        if statement.startswith("INSERT"):
            refused.append(statement)
            raise sqlite3.OperationalError("database is locked")
        return real(self, cursor, statement, parameters)

    monkeypatch.setattr(sqlite_driver.Connection, "run_here", busy_for_inserts)
    async with unit_of_work(session_factory(engine)) as session:
        await session.execute(text("INSERT INTO t VALUES (1, which_thread())"))
    assert refused == ["INSERT INTO t VALUES (1, which_thread())"]
    async with session_factory(engine)() as session:
        stored = (await session.execute(text("SELECT n, thread FROM t"))).all()
    assert len(stored) == 1
    assert stored[0].thread != threading.get_ident()


async def test_a_read_that_would_wait_for_a_lock_waits_in_the_thread(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where SQLite says busy at once (the read runs with no busy timeout on the loop),
    the read is sent to the connection's thread, which waits as long as it must."""
    real = sqlite_driver.Connection.run_here
    refused: list[str] = []

    def busy_once(self: Any, cursor: Any, statement: str, parameters: Any) -> list[Any]:
        if not refused:
            refused.append(statement)
            raise sqlite3.OperationalError("database is locked")
        return real(self, cursor, statement, parameters)

    monkeypatch.setattr(sqlite_driver.Connection, "run_here", busy_once)
    loop_thread = threading.get_ident()
    # The session's BEGIN was refused and waited in the thread; its SELECT ran here.
    assert await _read_thread(engine) == loop_thread
    assert refused == ["BEGIN"]
    refused.clear()
    monkeypatch.setattr(sqlite_driver, "is_read", lambda statement: statement != "BEGIN")
    assert await _read_thread(engine) != loop_thread
    assert refused == ["SELECT which_thread()"]


async def test_a_writer_waiting_for_another_process_leaves_the_loop_free(
    engine: AsyncEngine,
) -> None:
    """Another process holds the write lock: our writer waits for it off the loop, so
    the process goes on answering reads, and the writer gets its turn when the other
    lets go (were the loop blocked, nothing could tell the other to let go: the
    writer would fail with "database is locked" after the busy timeout)."""
    path = engine.url.database
    assert path is not None
    holding, release = threading.Event(), threading.Event()

    def other_process() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (n) VALUES (1)")
        holding.set()
        release.wait(60)
        conn.execute("COMMIT")
        conn.close()

    holder = threading.Thread(target=other_process)
    holder.start()
    try:
        await asyncio.to_thread(holding.wait, 60)
        sessions = session_factory(engine)

        async def write() -> None:
            async with unit_of_work(sessions) as session:
                await session.execute(text("INSERT INTO t (n) VALUES (2)"))

        writer = asyncio.create_task(write())
        for _ in range(20):  # let the writer reach SQLite's busy wait
            await asyncio.sleep(0.01)
        async with sessions() as session:
            assert list((await session.execute(text("SELECT n FROM t"))).scalars()) == []
        assert not writer.done()
    finally:
        release.set()
        await asyncio.to_thread(holder.join)
    await writer
    async with session_factory(engine)() as session:
        stored = (await session.execute(text("SELECT n FROM t ORDER BY n"))).scalars()
        assert list(stored) == [1, 2]


async def test_inline_reads_can_be_turned_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAOWU_SQLITE_INLINE_READS", "0")
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'd.db'}")
    event.listen(engine.sync_engine, "connect", _add_which_thread)
    try:
        assert await _read_thread(engine) != threading.get_ident()
    finally:
        await engine.dispose()
