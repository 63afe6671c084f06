"""Fault drill: `laowu workers import` killed with SIGKILL at random moments, with the
outbox worker (`laowu worker`) killed and restarted beside it; every run starts again
until one finishes. Afterwards the register holds each person of the file exactly once
and the search index converges to the database."""

from __future__ import annotations

import asyncio
import random

from sqlalchemy import func, select
from sqlmodel import col

from marketplace.workers.models import Worker
from tests.resilience.conftest import Scene
from tests.resilience.harness import (
    Daemon,
    Outcome,
    id_numbers,
    index_matches_database,
    laowu,
    laowu_once,
    pending_events,
    run_until_done,
    search_backend,
    workers_match_file,
    write_import_csv,
)

SEED = 20261128
ROWS = 2_000


async def _registered(scene: Scene) -> int:
    async with scene.sessions() as session:
        return int(
            (
                await session.execute(
                    select(func.count())
                    .select_from(Worker)
                    .where(col(Worker.broker_id) == scene.broker_id)
                )
            ).scalar_one()
        )


async def drill_cli_import(
    scene: Scene, rng: random.Random, *, rows: int, kills: int, outcome: Outcome
) -> None:
    numbers = id_numbers(rng, rows)
    path = scene.var_dir / "workers.csv"
    write_import_csv(path, numbers, scene.villages, seed=rng.randrange(10**9))
    worker = Daemon(
        [*laowu(), "worker", "--interval", "0.2"], scene.env, scene.var_dir / "worker.log"
    )
    stop = asyncio.Event()
    chaos = asyncio.create_task(worker.chaos(rng, outcome, "laowu worker", stop, every=2.0))
    seen = [await _registered(scene)]

    async def armed() -> bool:
        """A batch of this run has been committed: a kill now lands mid-import."""
        now = await _registered(scene)
        if now > seen[-1]:
            seen.append(now)
            return True
        return False

    try:
        await run_until_done(
            [
                *laowu(),
                "workers",
                "import",
                str(path),
                "--broker",
                str(scene.broker_id),
                "--batch-size",
                "100",
            ],
            scene.env,
            rng,
            kills=kills,
            window=(0.0, 0.15),
            outcome=outcome,
            label="workers import",
            armed=armed,
        )
        # The finished run's second pass over the file changes nothing.
        again = await laowu_once(
            scene.env, "workers", "import", str(path), "--broker", str(scene.broker_id)
        )
        assert "新增 0，" in again, again
    finally:
        stop.set()
        await chaos
    await laowu_once(scene.env, "worker", "--once", limit=900)
    backend = search_backend(scene.var_dir)
    try:
        async with scene.sessions() as session:
            outcome.checks.update(
                await workers_match_file(session, scene.cipher, numbers, scene.broker_id)
            )
            assert await pending_events(session) == 0
            outcome.checks.update(await index_matches_database(session, backend, renamed={}))
    finally:
        await backend.close()


async def test_import_killed_anywhere_loses_and_duplicates_nobody(scene: Scene) -> None:
    outcome = Outcome("cli import")
    await drill_cli_import(scene, random.Random(SEED), rows=ROWS, kills=2, outcome=outcome)
    assert any(k.startswith("workers import at") for k in outcome.kills), outcome.line()
