"""Deterministic scale data for benchmarks — the same generator as
``laowu demo --scale`` (``web/scale/``), with the benchmarks' historical sizes:
one broker per village, 2,000 organisations, workers and jobs as asked, no tasks.

    from bench.scale_data import generate
    counts = await generate(url, workers=1_000_000, jobs=100_000, seed=5)

``url`` is migrated and the region tree loaded first (``prepare`` does only that).
The same ``seed`` always gives the same rows, so results are comparable between runs
and between the search and ranking benchmarks. Running it again on a database that
already holds the data does nothing. Worker ID numbers and phones are encrypted under
``bench.common.SCALE_DATA_KEY`` (or the ``cipher`` given). The full Chongqing set
(3,000,000 workers, tasks and money) is bench/bench_scale_data.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from bench.common import SCALE_DATA_KEY
from marketplace.brokers.models import Broker
from marketplace.crypto import DataCipher, decode_key
from marketplace.db import create_engine
from marketplace.jobs.models import Job
from marketplace.organizations.models import Organization
from marketplace.workers.models import Worker
from web.scale import generate as scale
from web.scale.generate import Others
from web.scale.plan import Scale

VILLAGES = 11_270
ORGANIZATIONS = 2_000


@dataclass(frozen=True)
class Counts:
    brokers: int
    workers: int
    organizations: int
    jobs: int


async def prepare(url: str) -> None:
    """Migrate and load the region tree (idempotent)."""
    await scale.prepare(url)


async def counts(url: str) -> Counts:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:

            async def n(model: object) -> int:
                return int(
                    (await conn.execute(select(func.count()).select_from(model))).scalar_one()
                )  # type: ignore[arg-type]

            return Counts(
                brokers=await n(Broker),
                workers=await n(Worker),
                organizations=await n(Organization),
                jobs=await n(Job),
            )
    finally:
        await engine.dispose()


async def generate(
    url: str,
    *,
    workers: int = 1_000_000,
    jobs: int = 100_000,
    seed: int = 5,
    cipher: DataCipher | None = None,
    others: Others = Others(),
) -> Counts:
    """Fill ``url`` with brokers (one per village), workers, organisations and jobs;
    ``others`` counts the rows that were there before and are not the generator's."""
    size = Scale(
        f"bench-{seed}",
        brokers=VILLAGES,
        workers=workers,
        organizations=ORGANIZATIONS,
        jobs=jobs,
        tasks=0,
        seed=seed,
    )
    await scale.generate(
        url,
        size,
        cipher or DataCipher(decode_key(SCALE_DATA_KEY)),
        parts=("accounts", "workers", "organizations", "jobs"),
        others=others,
    )
    return await counts(url)
