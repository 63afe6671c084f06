"""Generating the Chongqing-scale data set (issue 9, part 1): 12,000 brokers with
logins, 3,000,000 workers (encrypted ID numbers and phones), 20,000 organisations,
100,000 jobs, 1,000,000 public-service tasks over a year with their ledger entries.
Records time, CPU time, rows and peak memory per part, the load average, the database's
size and the ledger check.

    python bench/bench_scale_data.py                       # SQLite, /work/scale/chongqing.sqlite
    python bench/bench_scale_data.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/laowu_chongqing
    python bench/bench_scale_data.py --scale tiny --database-url sqlite+aiosqlite:////tmp/t.db

The database is created afresh (SQLite file removed, PostgreSQL database dropped and
created) unless ``--keep`` is given (then only missing parts are generated). The
generated databases are kept for the other benchmarks' ``--scale-db`` option; their
data key is ``bench.common.SCALE_DATA_KEY``. No target is set by the issue for the
generation itself; it reports how long it took.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import SCALE_DATA_KEY, SCALE_SQLITE, cpu_seconds, load_average, record
from marketplace.crypto import DataCipher, decode_key
from marketplace.db import create_engine
from web.scale.check import check_ledger
from web.scale.generate import generate
from web.scale.plan import SCALES


def remove_sqlite(url: str) -> None:
    path = Path(url.split("///", 1)[1])
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def sqlite_size(url: str) -> int:
    path = Path(url.split("///", 1)[1])
    return sum(
        Path(f"{path}{s}").stat().st_size for s in ("", "-wal") if Path(f"{path}{s}").exists()
    )


async def fresh(url: str) -> None:
    if url.startswith("sqlite"):
        await asyncio.to_thread(remove_sqlite, url)
        return
    parts = urlsplit(url.replace("postgresql+asyncpg://", "postgresql://"))
    name = parts.path.lstrip("/")
    conn = await asyncpg.connect(urlunsplit((parts.scheme, parts.netloc, "/postgres", "", "")))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def size_of(url: str) -> str:
    if url.startswith("sqlite"):
        return f"{await asyncio.to_thread(sqlite_size, url) / 2**30:.2f} GiB"
    parts = urlsplit(url.replace("postgresql+asyncpg://", "postgresql://"))
    conn = await asyncpg.connect(urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")))
    try:
        size = await conn.fetchval("SELECT pg_database_size(current_database())")
    finally:
        await conn.close()
    return f"{int(size) / 2**30:.2f} GiB"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=f"sqlite+aiosqlite:///{SCALE_SQLITE}")
    parser.add_argument("--scale", choices=sorted(SCALES), default="chongqing")
    parser.add_argument("--factor", type=float, default=1.0)
    parser.add_argument("--keep", action="store_true", help="keep what the database holds")
    args = parser.parse_args()
    url = args.database_url
    scale = SCALES[args.scale] if args.factor == 1.0 else SCALES[args.scale].times(args.factor)
    if not args.keep:
        await fresh(url)
    load_before = load_average()
    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    cipher = DataCipher(decode_key(SCALE_DATA_KEY))
    report = await generate(url, scale, cipher, progress=lambda line: print(line, flush=True))
    load_after = load_average()
    check_started = time.perf_counter()
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            ledger = await check_ledger(conn)
    finally:
        await engine.dispose()
    check_s = time.perf_counter() - check_started
    db = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    lines = [
        f"database: {db} ({url.split('@')[-1] if db == 'PostgreSQL' else url.split('///')[-1]}), "
        f"size after generation {await size_of(url)}",
        f"scale: {scale.name} — {scale.brokers:,} brokers, {scale.workers:,} workers, "
        f"{scale.organizations:,} organisations, {scale.jobs:,} jobs, {scale.tasks:,} tasks "
        f"(seed {scale.seed})",
        f"load average at start {load_before}; at end {load_after}",
    ]
    for part in report.parts:
        state = "skipped (already there)" if part.skipped else f"{part.rows:,} rows"
        lines.append(
            f"part `{part.name}`: {state}, {part.seconds:.1f} s wall, {part.cpu_seconds:.1f} s CPU, "
            f"peak RSS so far {part.peak_rss_mb:.0f} MB"
        )
    lines += [
        f"total: {time.perf_counter() - wall0:.0f} s wall, {cpu_seconds() - cpu0:.0f} s CPU "
        f"(this process; the database server's CPU is not included), "
        f"peak RSS {report.peak_rss_mb:.0f} MB",
        f"ledger check ({check_s:.1f} s): {ledger.entries:,} entries, {ledger.postings:,} postings, "
        f"debits = credits = {ledger.debits_fen:,} fen: "
        + ("all invariants hold" if ledger.ok else "FAILED — " + "; ".join(ledger.problems())),
        f"pid {os.getpid()}",
    ]
    record(f"Chongqing-scale data generation ({db})", lines)
    if not ledger.ok:
        raise SystemExit(1)


if __name__ == "__main__":
    asyncio.run(main())
