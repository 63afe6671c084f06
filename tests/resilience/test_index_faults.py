"""Fault drill: the search index while it is being updated. Workers are renamed by a
re-import while `laowu worker` and `laowu serve` (which drains the outbox in-process)
are killed and restarted at random moments, and `laowu index rebuild` is killed
mid-run; afterwards the index holds exactly the live workers, each with its current
name (diff = 0)."""

from __future__ import annotations

import asyncio
import random
import socket

from tests.resilience.conftest import Scene
from tests.resilience.harness import (
    Daemon,
    Outcome,
    id_numbers,
    index_matches_database,
    laowu,
    laowu_once,
    name_of,
    pending_events,
    run_until_done,
    search_backend,
    write_import_csv,
)

SEED = 20261129


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def drill_index(
    scene: Scene, rng: random.Random, *, rows: int, renames: int, kills: int, outcome: Outcome
) -> None:
    numbers = id_numbers(rng, rows)
    path = scene.var_dir / "workers.csv"
    write_import_csv(path, numbers, scene.villages, seed=1)
    broker = ["--broker", str(scene.broker_id)]
    await laowu_once(scene.env, "workers", "import", str(path), *broker)
    await laowu_once(scene.env, "worker", "--once")

    renamed_rows = rng.sample(range(rows), renames)
    names = {n: name_of(n, "更名") for n in renamed_rows}
    write_import_csv(path, numbers, scene.villages, seed=1, names=names)
    worker = Daemon([*laowu(), "worker", "--interval", "0.2"], scene.env, scene.var_dir / "w.log")
    server = Daemon(
        [*laowu(), "serve", "--port", str(free_port())],
        {**scene.env, "LAOWU_OUTBOX_IN_PROCESS": "1"},
        scene.var_dir / "serve.log",
    )
    stop = asyncio.Event()
    chaos = [
        asyncio.create_task(worker.chaos(rng, outcome, "laowu worker", stop, every=4.0)),
        asyncio.create_task(server.chaos(rng, outcome, "laowu serve", stop, every=5.0)),
    ]
    try:
        await run_until_done(
            [*laowu(), "workers", "import", str(path), *broker, "--batch-size", "50"],
            scene.env,
            rng,
            kills=1,
            window=(1.5, 3.0),
            outcome=outcome,
            label="re-import",
        )
        await run_until_done(
            [*laowu(), "index", "rebuild", "--only", "workers"],
            scene.env,
            rng,
            kills=kills,
            window=(1.0, 3.0),
            outcome=outcome,
            label="index rebuild",
        )
    finally:
        stop.set()
        await asyncio.gather(*chaos)
    await laowu_once(scene.env, "worker", "--once")
    backend = search_backend(scene.var_dir)
    try:
        async with scene.sessions() as session:
            assert await pending_events(session) == 0
            ids = {}
            from sqlalchemy import select
            from sqlmodel import col

            from marketplace.workers.models import Worker

            for worker_id, name in (
                await session.execute(select(col(Worker.id), col(Worker.name)))
            ).all():
                ids[name] = worker_id
            expected = {ids[names[n]]: (name_of(n), names[n]) for n in renamed_rows}
            outcome.checks.update(await index_matches_database(session, backend, renamed=expected))
    finally:
        await backend.close()


async def test_index_updates_killed_anywhere_converge_to_the_database(scene: Scene) -> None:
    outcome = Outcome("index updates")
    await drill_index(scene, random.Random(SEED), rows=150, renames=30, kills=1, outcome=outcome)
    print(outcome.line())
