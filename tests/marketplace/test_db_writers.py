"""SQLite with many writers in one process: they queue in turn instead of racing in
SQLite's busy handler, so none fails with "database is locked" while the queue is
shorter than the busy timeout allows for each place in it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text

from marketplace import db
from marketplace.db import create_engine, session_factory, unit_of_work

WRITERS = 8
HOLD_SECONDS = 0.2  # each writer keeps the write lock this long: 1.6 s in all


async def test_writers_queue_past_the_busy_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A 1 s busy timeout: the last writers wait longer than that for their turn.
    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT_MS", 1000)
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}")
    sessions = session_factory(engine)
    try:
        async with unit_of_work(sessions) as session:
            await session.execute(text("CREATE TABLE t (n INTEGER)"))
        order: list[int] = []

        async def writer(n: int) -> None:
            async with unit_of_work(sessions) as session:
                order.append(n)
                await session.execute(text("INSERT INTO t (n) VALUES (:n)"), {"n": n})
                await asyncio.sleep(HOLD_SECONDS)

        results = await asyncio.gather(*(writer(n) for n in range(WRITERS)), return_exceptions=True)
        assert [r for r in results if r is not None] == []
        async with sessions() as session:
            stored = (await session.execute(text("SELECT n FROM t ORDER BY n"))).scalars()
            assert list(stored) == list(range(WRITERS))
        # In turn: first come, first served (the last ones, past the busy timeout in
        # the queue, are left to SQLite's busy handler and may swap places).
        assert order[:4] == list(range(4))
    finally:
        await engine.dispose()


async def test_a_failed_begin_gives_its_place_up(tmp_path: Path) -> None:
    """A writer whose transaction fails to start (or ends any way) leaves the queue,
    so the next one is not held up."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}")
    sessions = session_factory(engine)
    try:

        async def failing() -> None:
            async with unit_of_work(sessions) as session:
                await session.execute(text("CREATE TABLE t (n INTEGER)"))
                raise RuntimeError("handler failed")

        with pytest.raises(RuntimeError):
            await failing()
        async with asyncio.timeout(5):  # would wait out the busy timeout if still held
            async with unit_of_work(sessions) as session:
                await session.execute(text("CREATE TABLE t (n INTEGER)"))
    finally:
        await engine.dispose()
