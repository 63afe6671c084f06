"""Fixtures of the fault drills: a migrated database (SQLite file or PostgreSQL) that
the drills' subprocesses share, a var directory for the search index, a broker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from marketplace.brokers.models import Broker
from marketplace.crypto import DataCipher
from marketplace.db import create_engine, session_factory, unit_of_work
from marketplace.regions.models import Region, RegionLevel
from tests.conftest import TEST_DATA_KEY
from tests.resilience.harness import env_for

YUZHONG = "500103"


@dataclass
class Scene:
    url: str
    var_dir: Path
    env: dict[str, str]
    sessions: async_sessionmaker[AsyncSession]
    cipher: DataCipher
    broker_id: int
    villages: list[str]


async def drill_broker(sessions: async_sessionmaker[AsyncSession]) -> tuple[int, list[str]]:
    """The drills' broker, in the first of 20 villages of 渝中区 (all 20 returned)."""
    async with unit_of_work(sessions) as session:
        villages = list(
            (
                await session.execute(
                    select(col(Region.code))
                    .where(
                        col(Region.level) == RegionLevel.village,
                        col(Region.code).startswith(YUZHONG),
                    )
                    .order_by(col(Region.code))
                    .limit(20)
                )
            ).scalars()
        )
        broker = Broker(name="演练经纪人", village_code=villages[0])
        session.add(broker)
        await session.flush()
        assert broker.id is not None
        return broker.id, villages


@pytest.fixture
async def scene(db_url: str, tmp_path: Path, cipher: DataCipher) -> AsyncIterator[Scene]:
    engine = create_engine(db_url, pooled=False)
    sessions = session_factory(engine)
    broker_id, villages = await drill_broker(sessions)
    var_dir = tmp_path / "var"
    var_dir.mkdir()
    yield Scene(
        url=db_url,
        var_dir=var_dir,
        env=env_for(db_url, var_dir, TEST_DATA_KEY),
        sessions=sessions,
        cipher=cipher,
        broker_id=broker_id,
        villages=villages,
    )
    await engine.dispose()
