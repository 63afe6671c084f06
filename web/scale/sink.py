"""Bulk writing for the scale generator: rows straight through the driver.

SQLite: the driver's ``executemany`` with values converted the way SQLAlchemy stores
them (UTC datetimes as naive ``YYYY-MM-DD HH:MM:SS.ffffff`` text, dates as ISO text,
JSON as text, booleans as 0/1), so the ORM reads the rows back unchanged.
PostgreSQL: ``COPY`` through asyncpg's ``copy_records_to_table`` (JSON as text).
Both run inside the caller's transaction on the caller's connection.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, Table, text
from sqlalchemy.ext.asyncio import AsyncConnection

from marketplace.db import UTCDateTime

Converter = Callable[[Any], Any]


def _sqlite_time(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _sqlite_date(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _sqlite_bool(value: bool | None) -> int | None:
    return None if value is None else int(value)


class Sink:
    """Writes rows (dicts keyed by column name) into tables, in batches."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.dialect = conn.dialect.name
        self.rows_written: dict[str, int] = {}
        self._plans: dict[tuple[str, tuple[str, ...]], tuple[str, list[Converter | None]]] = {}

    def _plan(self, table: Table, columns: tuple[str, ...]) -> tuple[str, list[Converter | None]]:
        key = (table.name, columns)
        found = self._plans.get(key)
        if found is not None:
            return found
        converters: list[Converter | None] = []
        for name in columns:
            kind = table.c[name].type
            if isinstance(kind, JSON):
                converters.append(_json)
            elif self.dialect == "sqlite" and isinstance(kind, UTCDateTime):
                converters.append(_sqlite_time)
            elif self.dialect == "sqlite" and isinstance(kind, Date):
                converters.append(_sqlite_date)
            elif self.dialect == "sqlite" and isinstance(kind, Boolean):
                converters.append(_sqlite_bool)
            else:
                converters.append(None)
        names = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join("?" for _ in columns)
        sql = f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})'
        self._plans[key] = (sql, converters)
        return sql, converters

    async def write(self, table: Table, rows: Sequence[dict[str, Any]]) -> None:
        """Write ``rows`` (all with the keys of the first). Columns a row leaves out get
        the model's Python-side default, as an ORM insert would."""
        if not rows:
            return
        given = tuple(rows[0])
        defaults = _defaults(table, given)
        columns = given + tuple(defaults)
        sql, converters = self._plan(table, columns)
        extra = tuple(defaults.values())
        records = [
            tuple(
                value if conv is None else conv(value)
                for conv, value in zip(converters, (*(row[c] for c in given), *extra), strict=True)
            )
            for row in rows
        ]
        raw = (await self.conn.get_raw_connection()).driver_connection
        assert raw is not None
        if self.dialect == "postgresql":
            await raw.copy_records_to_table(table.name, records=records, columns=list(columns))
        else:
            await raw.executemany(sql, records)
        self.rows_written[table.name] = self.rows_written.get(table.name, 0) + len(rows)


class Buffer:
    """Rows per table, written when a table's buffer holds ``size`` rows."""

    def __init__(self, sink: Sink, order: Sequence[Table], size: int = 5000) -> None:
        """``order``: the tables, parents before children (foreign keys hold at
        every write)."""
        self.sink = sink
        self.size = size
        self._rows: dict[str, tuple[Table, list[dict[str, Any]]]] = {t.name: (t, []) for t in order}
        self._order: list[str] = [t.name for t in order]

    async def add(self, table: Table, row: dict[str, Any]) -> None:
        slot = self._rows[table.name]
        slot[1].append(row)
        if len(slot[1]) >= self.size:
            await self.flush_until(table.name)

    async def flush_until(self, name: str) -> None:
        """Write every table up to and including ``name``, parents first."""
        for other in self._order:
            table, rows = self._rows[other]
            if rows:
                await self.sink.write(table, rows)
                rows.clear()
            if other == name:
                break

    async def flush(self) -> None:
        if self._order:
            await self.flush_until(self._order[-1])


def _defaults(table: Table, given: tuple[str, ...]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for column in table.columns:
        if column.name in given or column.default is None or column.primary_key:
            continue
        default: Any = column.default
        if default.is_scalar:
            found[column.name] = default.arg
        elif default.is_callable:
            found[column.name] = default.arg(None)
    return found


async def begin(conn: AsyncConnection) -> None:
    """Start a transaction of our own (ending the one a read may have begun), so
    the driver-level writes that follow are inside it."""
    if conn.in_transaction():
        await conn.commit()
    await conn.begin()


async def max_id(conn: AsyncConnection, table: Table) -> int:
    found = (await conn.execute(text(f'SELECT MAX(id) FROM "{table.name}"'))).scalar()
    return int(found or 0)


async def fix_sequences(conn: AsyncConnection, tables: Sequence[Table]) -> None:
    """PostgreSQL: rows were written with explicit ids; move each id sequence past them."""
    if conn.dialect.name != "postgresql":
        return
    for table in tables:
        await conn.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                f'COALESCE((SELECT MAX(id) FROM "{table.name}"), 0) + 1, false)'
            )
        )
