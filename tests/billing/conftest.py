"""Billing fixtures: a session factory on the per-test database, brokers, events."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from billing import subsidies
from marketplace.brokers.models import Broker
from marketplace.db import create_engine, session_factory, unit_of_work
from marketplace.dispatcher import Registry
from marketplace.events import emit
from marketplace.regions.models import Region

YUZHONG = "500103"
WUXI = "500238"

_submissions = itertools.count(1)


@pytest.fixture
async def factory(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(db_url)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


async def first_village(session: AsyncSession, district: str) -> str:
    code = (
        await session.execute(
            select(col(Region.code))
            .where(col(Region.level) == "village", col(Region.code).startswith(district))
            .order_by(col(Region.code))
            .limit(1)
        )
    ).scalar_one()
    return str(code)


async def make_broker(
    factory: async_sessionmaker[AsyncSession],
    district: str = YUZHONG,
    *,
    name: str = "王经纪",
    **fields: Any,
) -> int:
    async with unit_of_work(factory) as session:
        broker = Broker(name=name, village_code=await first_village(session, district), **fields)
        session.add(broker)
        await session.flush()
        assert broker.id is not None
        return broker.id


def approved_payload(
    broker_id: int,
    *,
    amount_fen: int = 5_000,
    district: str = YUZHONG,
    source: str = "employment_subsidy",
    task_type: str = "job_fair",
    approved_at: datetime | None = None,
    submission_id: int | None = None,
) -> dict[str, Any]:
    submission = submission_id or next(_submissions)
    return {
        "task_id": 1000 + submission,
        "submission_id": submission,
        "broker_id": broker_id,
        "task_type_code": task_type,
        "task_type_version": 1,
        "district_code": district,
        "funding_source": source,
        "approved_quantity": 1,
        "rate_fen": amount_fen,
        "amount_fen": amount_fen,
        "approved_at": (approved_at or datetime.now(UTC)).isoformat(),
    }


def reversed_payload(approved: dict[str, Any], reason: str = "抽查未通过") -> dict[str, Any]:
    return {
        "task_id": approved["task_id"],
        "submission_id": approved["submission_id"],
        "broker_id": approved["broker_id"],
        "district_code": approved["district_code"],
        "funding_source": approved["funding_source"],
        "amount_fen": approved["amount_fen"],
        "reason": reason,
        "spot_check_id": 7,
    }


async def emit_events(
    factory: async_sessionmaker[AsyncSession], *events: tuple[str, dict[str, Any]]
) -> None:
    async with unit_of_work(factory) as session:
        for name, payload in events:
            await emit(session, name, payload)


def billing_registry() -> Registry:
    registry = Registry()
    for name, handler in subsidies.HANDLERS.items():
        registry.subscribe(name, "billing", handler)
    return registry
