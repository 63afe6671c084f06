"""SQLite statements without a thread hop: the DBAPI module ``create_engine`` gives
SQLAlchemy's aiosqlite dialect (docs/operations.md, "Load test").

aiosqlite runs every driver call (making a cursor, executing, fetching, closing the
cursor, committing, rolling back) on the connection's own thread, and the answer comes
back through the event loop: about four hand-offs a statement, twenty-odd for a simple
authenticated read, each one a wake-up of the loop and a handover of the GIL between
two threads. Most of those calls take microseconds, but under load each hand-off also
waits behind every other request the loop has ready: a write of a dozen statements
took two seconds at 115 requests/s (bench/bench_load.py). Here:

- Reads and row writes run in the event loop's thread directly: a ``SELECT`` with its
  rows, a plain (deferred) ``BEGIN``, ``BEGIN IMMEDIATE``, ``INSERT``/``UPDATE``/
  ``DELETE``/``REPLACE`` (with any ``RETURNING`` rows), SQLAlchemy's savepoints,
  making and closing cursors, and the commit or rollback of a transaction that only
  read. Such a statement runs with SQLite's busy timeout at zero, so it never waits
  for a lock on the loop: where it would have to wait (another connection holds the
  write lock, is recovering the WAL, or holds the database in exclusive mode) SQLite
  answers SQLITE_BUSY at once, before the statement has changed anything, and the
  statement is sent to the thread, where it waits as before.
- Everything else goes to the connection's thread as before, with the connection's
  full busy timeout (its ``timeout`` argument): ``PRAGMA``, DDL, ``executemany``,
  what a caller sends to the driver directly (billing's ledger), opening and closing
  the connection, and the commit or rollback of a transaction that wrote or sent
  anything to the thread (a commit that wrote may checkpoint the WAL: file I/O).
- One sqlite3 connection is never used by two threads at once: while a call of the
  connection is queued or running in its thread (say a cancelled request's statement,
  which runs to its end), every further call of that connection goes to the thread
  too, in line behind it. The connection is opened with ``check_same_thread=False``
  for that reason only.

The trade-off: a statement now holds its process's event loop for as long as SQLite
takes to answer it, where before the loop could serve other requests meanwhile (a
single statement that scans or changes much of a large table holds every other
request of the process; bulk work runs in ``laowu`` commands and ``executemany``).
``LAOWU_SQLITE_INLINE_READS=0`` turns this off (``create_engine``).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any, cast

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

# sqlite3's default busy timeout (its ``timeout`` argument), in seconds.
_SQLITE3_DEFAULT_TIMEOUT = 5.0


def is_read(statement: str) -> bool:
    """Whether a statement only reads and takes no lock it could wait for: a SELECT
    (its first word), or a deferred BEGIN (it takes no lock until the first read)."""
    head = statement.lstrip()[:6]
    return head.upper() == "SELECT" or statement == "BEGIN"


_ROW_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")
# SQLAlchemy's savepoints (begin_nested): inside our BEGIN they take no lock of their own.
_SAVEPOINTS = ("SAVEPOINT ", "RELEASE SAVEPOINT ", "ROLLBACK TO SAVEPOINT ")


def is_row_write(statement: str) -> bool:
    """Whether a statement writes rows (its first word), is the BEGIN IMMEDIATE of a
    writer, or sets, releases or rolls back to a savepoint: statements that may wait
    only for the write lock."""
    return (
        statement.lstrip()[:7].upper().startswith(_ROW_WRITES)
        or statement == "BEGIN IMMEDIATE"
        or statement.startswith(_SAVEPOINTS)
    )


def _is_busy(error: sqlite3.OperationalError) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    words = str(error).lower()
    return "locked" in words or "busy" in words


class Connection(aiosqlite.Connection):
    """aiosqlite's connection, which also knows whether its thread has work of this
    connection in hand, and whether the transaction sent anything there."""

    def __init__(self, connector: Callable[[], sqlite3.Connection], busy_ms: int) -> None:
        super().__init__(connector, 64)
        self._handed = 0  # calls given to the thread; written in the loop's thread only
        self._done = 0  # calls the thread has finished; written in that thread only
        self._busy_ms = busy_ms
        self._busy_now = busy_ms  # the busy timeout the sqlite3 connection has now
        # Whether this transaction sent anything to the thread (it may have written),
        # and whether it wrote here: either way its end goes to the thread.
        self.threaded = False
        self.wrote = False

    @property
    def idle(self) -> bool:
        """Open, and no call of this connection queued or running in its thread."""
        return self._handed == self._done and self._connection is not None

    async def _execute(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """aiosqlite's: queue the call for the connection's thread (with the full busy
        timeout), counting it until it has finished there."""
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        self.threaded = True

        def call() -> Any:
            try:
                self._set_busy(self._busy_ms)
                return fn(*args, **kwargs)
            finally:
                self._done += 1

        future = asyncio.get_running_loop().create_future()
        self._handed += 1
        self._tx.put_nowait((future, call))
        return await future

    def _set_busy(self, ms: int) -> None:
        """One PRAGMA only when the mode changes (a connection that only reads keeps
        its zero)."""
        if self._busy_now != ms:
            self._conn.execute(f"PRAGMA busy_timeout={ms}")
            self._busy_now = ms

    def run_here(self, cursor: sqlite3.Cursor, statement: str, parameters: Any) -> list[Any]:
        """Run a read or a row write in the calling (the loop's) thread, never waiting
        for a lock: raises sqlite3.OperationalError (busy) where it would have to wait."""
        self._set_busy(0)
        cursor.execute(statement, () if parameters is None else parameters)
        return cursor.fetchall() if cursor.description else []

    def end_here(self, commit: bool) -> None:
        """Commit or roll back a transaction that only read, in the calling thread."""
        if commit:
            self._conn.commit()
        else:
            self._conn.rollback()

    async def commit(self) -> None:
        await super().commit()
        self.threaded = self.wrote = False

    async def rollback(self) -> None:
        try:
            await super().rollback()
        finally:
            self.threaded = self.wrote = False


class _Cursor(AsyncAdapt_aiosqlite_cursor):
    """SQLAlchemy's aiosqlite cursor, with reads, row writes and the cursor's own
    making and closing done in the calling thread when the connection allows it."""

    __slots__ = ()

    def __init__(self, adapt_connection: _AdaptedConnection) -> None:
        driver = adapt_connection.driver
        if not driver.idle:
            super().__init__(adapt_connection)
            return
        self._adapt_connection = adapt_connection
        self._connection = cast(Any, driver)
        self._cursor = cast(Any, aiosqlite.Cursor(driver, driver._conn.cursor()))
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = deque()

    @property
    def _driver(self) -> Connection:
        return cast(Connection, self._connection)

    @property
    def _raw(self) -> sqlite3.Cursor:
        return cast(aiosqlite.Cursor, self._cursor)._cursor

    def _here(self) -> bool:
        return self._driver.idle and not self._adapt_connection._execute_mutex.locked()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        writes = is_row_write(operation)
        if not writes and not is_read(operation):
            return super().execute(operation, parameters)
        try:
            # Through await_ still, though nothing waits: SQLAlchemy's AsyncConnection
            # checks that a statement went through the async driver.
            return await_(self._here_async(operation, parameters, writes))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    async def _here_async(self, operation: Any, parameters: Any, writes: bool) -> Any:
        if self._here():
            try:
                rows = self._driver.run_here(self._raw, operation, parameters)
            except sqlite3.OperationalError as error:
                if not _is_busy(error):
                    raise
                # It would have to wait for a lock: it waits in the thread instead.
            else:
                if writes:
                    self._driver.wrote = True
                self._rows = deque(rows)
                return self._cursor
        return await self._execute_async(operation, parameters)

    async def _async_soft_close(self) -> None:
        if self.server_side or not self._here():
            await super()._async_soft_close()
            return
        self._soft_closed_memoized = self._soft_closed_memoized.union(
            {"description": self._cursor.description}
        )
        self._raw.close()

    def close(self) -> None:
        if self._soft_closed_memoized or not self._here():
            super().close()
            return
        self._rows.clear()
        self._raw.close()


class _AdaptedConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = _Cursor  # type: ignore[assignment]

    @property
    def driver(self) -> Connection:
        return cast(Connection, self._connection)

    @property
    def isolation_level(self) -> str | None:
        return self.driver._conn.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        # In the connection's thread, counted like every other call there.
        def set_level(connection: sqlite3.Connection, level: Any) -> None:
            connection.isolation_level = level

        try:
            await_(self.driver._execute(set_level, self.driver._conn, value))
        except Exception as error:
            self._handle_exception(error)

    def _reads_only(self) -> bool:
        driver = self.driver
        return (
            driver.idle
            and not driver.threaded
            and not driver.wrote
            and not self._execute_mutex.locked()
        )

    def commit(self) -> None:
        if self._reads_only():
            self.driver.end_here(commit=True)
        else:
            super().commit()

    def rollback(self) -> None:
        if self._reads_only():
            self.driver.end_here(commit=False)
        else:
            super().rollback()


class InlineReadsDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """The DBAPI module for ``create_async_engine(..., module=InlineReadsDBAPI())``
    with a ``sqlite+aiosqlite`` URL: SQLAlchemy's aiosqlite adapter over
    ``Connection`` above."""

    def __init__(self) -> None:
        super().__init__(aiosqlite, sqlite3)

    def connect(self, *arg: Any, **kw: Any) -> _AdaptedConnection:
        if kw.pop("async_creator_fn", None) is not None:
            raise ValueError("async_creator is not supported by the inline-reads SQLite driver")
        kw["check_same_thread"] = False
        busy_ms = int(float(kw.get("timeout", _SQLITE3_DEFAULT_TIMEOUT)) * 1000)
        connection = Connection(partial(sqlite3.connect, *arg, **kw), busy_ms)
        connection._thread.daemon = True
        return _AdaptedConnection(self, cast(Any, await_(connection)))
