"""PostgreSQL's connection pool: a connection that died while it sat idle (a server
restart, a firewall's idle timeout) is replaced before a request uses it, without a
ping at every checkout (marketplace/db.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from marketplace import db
from marketplace.db import create_engine

postgres_only = pytest.mark.parametrize("db_url", ["postgres"], indirect=True)


@postgres_only
async def test_a_connection_killed_while_idle_is_replaced_before_use(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            victim = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        async with create_engine(db_url, pooled=False).connect() as other:
            await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": victim})
        monkeypatch.setattr(db, "PING_IDLE_SECONDS", 0.0)  # it has been idle long enough
        async with engine.connect() as conn:
            fresh = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert fresh != victim
    finally:
        await engine.dispose()


@postgres_only
async def test_a_connection_in_steady_use_is_not_pinged(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine(db_url)
    pings: list[object] = []
    real_ping = engine.dialect.do_ping

    def counted(dbapi_connection: object) -> bool:
        pings.append(dbapi_connection)
        return real_ping(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    try:
        for _ in range(3):
            async with engine.connect() as conn:
                assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
        assert pings == []
        monkeypatch.setattr(db, "PING_IDLE_SECONDS", 0.0)
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
        assert len(pings) == 1
    finally:
        await engine.dispose()


@postgres_only
async def test_our_sessions_plan_no_parallel_workers(db_url: str) -> None:
    """A district's worker list ran 3.6 times slower as a parallel plan on 2 cores
    (docs/operations.md, "PostgreSQL settings"): our connections plan without workers,
    where the server's default would use them."""
    engine = create_engine(db_url)

    async def plan(conn: AsyncConnection) -> str:
        rows = await conn.execute(text("EXPLAIN SELECT count(*) FROM parallel_probe"))
        return "\n".join(rows.scalars())

    try:
        async with engine.begin() as conn:
            await conn.execute(
                text("CREATE TABLE parallel_probe AS SELECT generate_series(1, 50000) AS n")
            )
            await conn.execute(text("ANALYZE parallel_probe"))
        async with engine.connect() as conn:
            # Parallel plans made as cheap as can be: only the setting keeps them out.
            for setting in (
                "parallel_setup_cost",
                "parallel_tuple_cost",
                "min_parallel_table_scan_size",
            ):
                await conn.execute(text(f"SET {setting} = 0"))
            assert "Gather" not in await plan(conn)
            await conn.execute(text("SET max_parallel_workers_per_gather = 2"))
            assert "Gather" in await plan(conn)  # as with PostgreSQL's default, 2
    finally:
        await engine.dispose()
