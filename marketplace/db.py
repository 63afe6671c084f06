"""Engine and session plumbing shared by every package.

SQLite (the embedded default) runs in WAL mode with foreign keys and a busy
timeout; a unit of work that will write begins with ``BEGIN IMMEDIATE`` so two
writers queue on the busy timeout instead of failing with "database is locked"
when a read lock cannot be upgraded. Within one process, writers to a SQLite database
also queue on an asyncio lock before they ask SQLite (``begin_write``): SQLite's busy
handler polls and is not fair, so under load a writer could lose the race for its
whole busy timeout and fail with "database is locked" (bench/bench_load.py found it).
SQLite reads and row writes run in the event loop's thread, and whatever has to wait
for a lock in the connection's own thread (marketplace/sqlite_driver.py).
"""

from __future__ import annotations

import asyncio
import os
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, DateTime, event, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Dialect, Engine, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

from marketplace.sqlite_driver import InlineReadsDBAPI

WRITE_OPTION = "laowu_write"
SQLITE_BUSY_TIMEOUT_MS = 15_000


def sqlite_busy_timeout_ms() -> int:
    """How long a SQLite writer queues for the lock before giving up (then the request
    answers 503 with Retry-After, web/errors.py). ``LAOWU_SQLITE_BUSY_TIMEOUT_MS``
    overrides the default: the fault drills set it tiny to make the lock contended."""
    raw = os.environ.get("LAOWU_SQLITE_BUSY_TIMEOUT_MS", "").strip()
    return int(raw) if raw.isdigit() else SQLITE_BUSY_TIMEOUT_MS


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on SQLite (which has no time zones) too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; store timezone-aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


# Every PostgreSQL session of ours. Short OLTP queries: the JIT costs far more than it
# saves. No parallel workers: on a few cores serving many requests a Gather of three
# processes is slower, not faster (a district admin's worker list over 162,110 workers:
# its page query took 162 ms with two workers, 45 ms without; docs/operations.md).
POSTGRES_SETTINGS = {"jit": "off", "max_parallel_workers_per_gather": "0"}


def create_engine(
    url: str, *, echo: bool = False, pooled: bool = True, inline: bool = True
) -> AsyncEngine:
    """``pooled=False`` opens a connection per checkout: for callers that hop event
    loops (test clients), since an asyncpg connection belongs to the loop that made it.
    ``inline=False``: SQLite statements all run in aiosqlite's thread, for long work
    beside the requests of a server (marketplace/sqlite_driver.py)."""
    kwargs: dict[str, Any] = {"echo": echo}
    if is_sqlite(url):
        kwargs["connect_args"] = {"timeout": sqlite_busy_timeout_ms() / 1000}
        if inline and _inline_reads(url):
            kwargs["module"] = InlineReadsDBAPI()
    if not pooled:
        kwargs["poolclass"] = NullPool
    elif not is_sqlite(url):
        kwargs.update(pool_size=10, max_overflow=10)
    if not is_sqlite(url):
        kwargs["connect_args"] = {"server_settings": POSTGRES_SETTINGS}
    engine = create_async_engine(url, **kwargs)
    if is_sqlite(url):
        _configure_sqlite(engine)
    elif pooled:
        _ping_when_idle(engine)
    return engine


# A pooled PostgreSQL connection that has sat unused this long is pinged before use.
PING_IDLE_SECONDS = 10.0


def _ping_when_idle(engine: AsyncEngine) -> None:
    """SQLAlchemy's ``pool_pre_ping`` pings every connection at every checkout: with
    asyncpg that is three round trips (BEGIN, an empty query, ROLLBACK) per request.
    Here only a connection idle for ``PING_IDLE_SECONDS`` is pinged (a server restart
    or a firewall's idle timeout drops connections while they sit unused); one that
    fails is replaced before the request sees it. A connection in steady use is not
    pinged: if the server goes away under load, the statement that finds it gone
    fails (503 or 500, nothing written) and SQLAlchemy then retires every pooled
    connection made before that moment."""

    @event.listens_for(engine.sync_engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["laowu_idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop("laowu_idle_since", None)
        if since is None or time.monotonic() - since < PING_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError("pooled connection did not answer a ping") from exc


def _inline_reads(url: str) -> bool:
    """SQLite reads and row writes in the event loop's thread
    (marketplace/sqlite_driver.py), for the aiosqlite driver, unless
    ``LAOWU_SQLITE_INLINE_READS=0``."""
    if os.environ.get("LAOWU_SQLITE_INLINE_READS", "").strip() == "0":
        return False
    return make_url(url).get_driver_name() == "aiosqlite"


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so we can say BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={sqlite_busy_timeout_ms()}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


# One writer queue per SQLite engine and event loop (an asyncio lock belongs to one loop).
_writer_queues: weakref.WeakKeyDictionary[
    Engine, weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]
] = weakref.WeakKeyDictionary()


async def begin_write(session: AsyncSession) -> None:
    """Open the session's transaction as a writer (BEGIN IMMEDIATE on SQLite)."""
    bind = session.bind
    queued = False
    if isinstance(bind, AsyncEngine) and bind.dialect.name == "sqlite":
        queued = await _queue_writer(session, bind.sync_engine)
    try:
        await session.connection(execution_options={WRITE_OPTION: True})
    except BaseException:
        if queued:
            _leave_queue(session.sync_session)
        raise


async def _queue_writer(session: AsyncSession, engine: Engine) -> bool:
    """Wait in this process's FIFO queue of writers; the place is given up when the
    session's transaction ends. After the busy timeout it stops waiting and leaves it
    to SQLite (as before the queue), so a writer nested in another never hangs."""
    loop = asyncio.get_running_loop()
    lock = _writer_queues.setdefault(engine, weakref.WeakKeyDictionary()).setdefault(
        loop, asyncio.Lock()
    )
    try:
        await asyncio.wait_for(lock.acquire(), SQLITE_BUSY_TIMEOUT_MS / 1000)
    except TimeoutError:
        return False
    sync_session = session.sync_session
    sync_session.info["laowu_writer_lock"] = lock
    if not event.contains(sync_session, "after_transaction_end", _transaction_ended):
        event.listen(sync_session, "after_transaction_end", _transaction_ended)
    return True


def _transaction_ended(sync_session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the outermost one, not a savepoint
        _leave_queue(sync_session)


def _leave_queue(sync_session: Session) -> None:
    lock = sync_session.info.pop("laowu_writer_lock", None)
    if lock is not None and lock.locked():
        lock.release()


@asynccontextmanager
async def unit_of_work(
    factory: async_sessionmaker[AsyncSession], *, write: bool = True
) -> AsyncIterator[AsyncSession]:
    """One transaction: commit when the block ends cleanly, roll back otherwise."""
    async with factory() as session:
        if write:
            await begin_write(session)
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


T = TypeVar("T")


async def fetch_page(
    session: AsyncSession,
    model: type[T],
    where: list[ColumnElement[bool]],
    *,
    order_by: Any,
    limit: int,
    offset: int,
) -> tuple[list[T], int]:
    """One page of ``model`` rows matching ``where``, and how many match in all.
    ``order_by`` is one expression or a tuple of them (a tie-breaker keeps pages stable)."""
    orders = order_by if isinstance(order_by, tuple) else (order_by,)
    total = (
        await session.execute(select(func.count()).select_from(model).where(*where))
    ).scalar_one()
    rows = await session.execute(
        select(model).where(*where).order_by(*orders).limit(limit).offset(offset)
    )
    return list(rows.scalars()), int(total)


async def insert_ignoring_duplicates(
    session: AsyncSession, model: Any, rows: list[dict[str, Any]], *, chunk: int = 5000
) -> None:
    """Insert rows, skipping any that would break a unique key (``ON CONFLICT DO
    NOTHING`` on both SQLite and PostgreSQL): for idempotent bookkeeping rows."""
    dialect = session.get_bind().dialect.name
    insert_ = pg_insert if dialect == "postgresql" else sqlite_insert
    for start in range(0, len(rows), chunk):
        await session.execute(
            insert_(model).values(rows[start : start + chunk]).on_conflict_do_nothing()
        )
