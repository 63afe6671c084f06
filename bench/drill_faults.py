"""Fault drills, the long version: the drills of tests/resilience with many more kill
points. Kills `laowu workers import`, `laowu worker`, `laowu serve` (and its background
page import), `laowu index rebuild` and `laowu billing execute-batch` with SIGKILL at
seeded random moments, restarts them, and checks: no lost or duplicated workers
(against the file, by ID-number hash), each broker paid once per batch, every approved
task accrued once, the ledger invariants, and the search index equal to the database
(ids and content, diff = 0). Writes the seed, every kill point and the outcomes to
bench/RESULTS.md.

    python bench/drill_faults.py [--database-url URL] [--seed N] [--rounds N]

A temporary SQLite file by default; with a PostgreSQL URL (postgresql+asyncpg://…) each
drill gets a fresh database created beside the one named (and dropped afterwards).
Not part of `make bench` (it runs for minutes); see docs/operations.md, "Fault drills".
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from bench.common import record
from marketplace.crypto import DataCipher, decode_key, new_data_key
from marketplace.db import create_engine, session_factory
from tests.conftest import _build_template, _pg_admin, _with_database
from tests.resilience.conftest import Scene, drill_broker
from tests.resilience.harness import Outcome, env_for
from tests.resilience.test_import_faults import drill_cli_import
from tests.resilience.test_index_faults import drill_index
from tests.resilience.test_page_import_faults import drill_page_import
from tests.resilience.test_payout_faults import drill_payouts

Drill = Callable[[Scene, random.Random, Outcome], Awaitable[None]]


def drills(rounds: int) -> list[tuple[str, Drill]]:
    return [
        (
            "cli import",
            lambda s, r, o: drill_cli_import(s, r, rows=5000, kills=3 * rounds, outcome=o),
        ),
        (
            "page import",
            lambda s, r, o: drill_page_import(s, r, rows=4000, kills=2 * rounds, outcome=o),
        ),
        (
            "index updates",
            lambda s, r, o: drill_index(s, r, rows=1500, renames=300, kills=2 * rounds, outcome=o),
        ),
        (
            "payout batch",
            lambda s, r, o: drill_payouts(s, r, brokers=100, kills=3 * rounds, outcome=o),
        ),
    ]


async def _scene(url: str, var_dir: Path, data_key: str) -> tuple[Scene, Any]:
    await _build_template(url)
    engine = create_engine(url, pooled=False)
    sessions = session_factory(engine)
    broker_id, villages = await drill_broker(sessions)
    scene = Scene(
        url=url,
        var_dir=var_dir,
        env=env_for(url, var_dir, data_key),
        sessions=sessions,
        cipher=DataCipher(decode_key(data_key)),
        broker_id=broker_id,
        villages=villages,
    )
    return scene, engine


async def run_one(base_url: str | None, name: str, drill: Drill, seed: int) -> Outcome:
    outcome = Outcome(name)
    data_key = new_data_key()
    with tempfile.TemporaryDirectory() as tmp:
        var_dir = Path(tmp) / "var"
        var_dir.mkdir()
        database = None
        if base_url:
            database = f"laowu_drill_{uuid.uuid4().hex[:8]}"
            await _pg_admin(base_url, f'CREATE DATABASE "{database}"')
            url = _with_database(base_url, database)
        else:
            url = f"sqlite+aiosqlite:///{tmp}/drill.db"
        try:
            scene, engine = await _scene(url, var_dir, data_key)
            started = time.perf_counter()
            try:
                await drill(scene, random.Random(seed), outcome)
                outcome.checks["result"] = "PASS"
            except (AssertionError, TimeoutError) as exc:
                outcome.checks["result"] = f"FAIL: {type(exc).__name__} {exc}"
                traceback.print_exc()
            finally:
                outcome.checks["seconds"] = round(time.perf_counter() - started, 1)
                await engine.dispose()
        finally:
            if database and base_url:
                await _pg_admin(base_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    return outcome


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--rounds", type=int, default=2, help="kill points scale with this")
    parser.add_argument(
        "--only", default=None, help="drills by name, comma-separated, e.g. 'payout batch'"
    )
    args = parser.parse_args()
    outcomes = []
    for n, (name, drill) in enumerate(drills(args.rounds)):
        if args.only and name not in args.only.split(","):
            continue
        outcome = asyncio.run(run_one(args.database_url, name, drill, args.seed + n))
        print(outcome.line(), flush=True)
        outcomes.append(outcome)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = resource.getrusage(resource.RUSAGE_SELF)
    backend = "PostgreSQL" if args.database_url else "SQLite"
    record(
        "Fault drills (SIGKILL at random moments)",
        [
            f"database: {backend}; seed {args.seed} (drill i uses seed + i); rounds {args.rounds}",
            f"load average (1 min) when recorded: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
            f"CPU time: drill processes (laowu children) {usage.ru_utime + usage.ru_stime:.1f} s, "
            f"the drill itself {own.ru_utime + own.ru_stime:.1f} s",
            *[o.line() for o in outcomes],
        ],
    )
    return 0 if all(o.checks.get("result") == "PASS" for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
