"""The queries behind the busiest task pages read an index, not the whole table
(at Chongqing scale a scan is a million rows per request)."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.dialects import sqlite
from sqlmodel import col

from marketplace.db import create_engine
from marketplace.tasks.models import ServiceTask


async def test_a_brokers_own_tasks_newest_first_come_from_an_index(db_url: str) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("the plan is checked on SQLite: PostgreSQL plans an empty table by cost")
    stmt = (
        select(ServiceTask)
        .where(col(ServiceTask.broker_id) == 7)
        .order_by(col(ServiceTask.id).desc())
        .limit(20)
    )
    sql = str(stmt.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            plan = " ".join(
                str(row[-1]) for row in await conn.execute(text(f"EXPLAIN QUERY PLAN {sql}"))
            )
    finally:
        await engine.dispose()
    assert "ix_service_task_broker_id" in plan, plan
    assert "SCAN service_task" not in plan, plan
