"""Worker register import: a generated 100,000-row CSV through `laowu workers import`
(the CLI path: streamed, a commit per 1,000-row batch) in under 60 s, with the import
process's peak RSS under 500 MB.

    python bench/bench_workers_import.py [--database-url URL] [--rows 100000]
    python bench/bench_workers_import.py --scale-db sqlite|postgresql

Runs on a temporary SQLite file by default; pass a PostgreSQL URL
(postgresql+asyncpg://…) to measure there (each run adds new people). With
``--scale-db`` the import goes into a copy of the Chongqing-scale register (3,000,000
workers, bench/bench_scale_data.py), under that data set's key, so every row is checked
against the whole register; the copy is removed afterwards and the shared data set is
left as it was. Appends the figures to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg
from sqlalchemy import func, select
from sqlmodel import col

from bench.common import (
    SCALE_DATA_KEY,
    SCALE_PG_NAME,
    SCALE_SQLITE,
    add_scale_db_option,
    laowu_command,
    laowu_env,
    record,
    scale_db_url,
)
from marketplace.brokers.models import Broker
from marketplace.crypto import new_data_key
from marketplace.db import create_engine, session_factory, unit_of_work
from marketplace.regions import service as regions
from marketplace.regions.models import Region, RegionLevel
from marketplace.workers.identity import check_char
from marketplace.workers.importing import COLUMNS
from marketplace.workers.models import Worker
from web.migrate import upgrade

SKILLS = ["电焊", "钢筋工", "木工", "瓦工", "保洁", "厨师", "叉车司机", "育婴员", "电工", "普工"]
STATUSES = ["本地就业", "外出务工", "求职中", "非劳动力", "未知"]


async def prepare(url: str) -> tuple[int, list[str]]:
    engine = create_engine(url)
    try:
        await upgrade(engine)
        async with unit_of_work(session_factory(engine)) as session:
            if (await session.execute(select(Region).limit(1))).first() is None:
                await regions.load(session=session, rows=regions.read_csv(regions.bundled_csv()))
            villages = list(
                (
                    await session.execute(
                        select(col(Region.code)).where(
                            col(Region.level) == RegionLevel.village,
                            col(Region.code).startswith("500103"),
                        )
                    )
                ).scalars()
            )
            broker = Broker(name="导入基准经纪人", village_code=villages[0])
            session.add(broker)
            await session.flush()
            assert broker.id is not None
            return broker.id, villages
    finally:
        await engine.dispose()


def write_csv(path: Path, rows: int, villages: list[str], seed: int) -> None:
    rng = random.Random(seed)
    used: set[str] = set()
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow([c.header for c in COLUMNS])
        while len(used) < rows:
            born = date(1960, 1, 1) + timedelta(days=rng.randrange(45 * 365))
            first17 = f"500103{born:%Y%m%d}{rng.randrange(1000):03d}"
            number = first17 + check_char(first17)
            if number in used:
                continue
            used.add(number)
            low = rng.randrange(150, 300) * 100
            values = {
                "name": "工人" + chr(0x4E00 + rng.randrange(20000)),
                "id_number": number,
                "phone": f"1{rng.choice('3589')}{rng.randrange(10**9):09d}",
                "hukou_village_code": rng.choice(villages),
                "employment_status": rng.choice(STATUSES),
                "skills": "、".join(rng.sample(SKILLS, rng.randint(0, 3))),
                "wage_min_fen": low * 10,
                "wage_max_fen": low * 10 + 5000,
                "wage_unit": "天",
                "mobility": rng.choice(["本地", "重庆市内", "不限"]),
                "consent_to_recommend": rng.choice(["是", "否"]),
            }
            writer.writerow([values.get(c.field, "") for c in COLUMNS])


def run_import(url: str, data_key: str, tmp: str, path: Path, broker_id: int) -> float:
    env = laowu_env(url, data_key, tmp)
    laowu = laowu_command()
    started = time.perf_counter()
    done = subprocess.run(
        [str(laowu), "workers", "import", str(path), "--broker", str(broker_id)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"import failed: {done.stderr[-2000:]}")
    print(done.stdout.splitlines()[0])
    return elapsed


SCRATCH_PG = "laowu_import_scratch"


async def _pg(sql: str) -> None:
    conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def scale_copy(scale_url: str, tmp: str) -> str:
    """A scratch copy of the Chongqing-scale database to import into."""
    if scale_url.startswith("sqlite"):
        target = Path(SCALE_SQLITE).with_name("import-scratch.sqlite")
        source = sqlite3.connect(SCALE_SQLITE)
        copy = sqlite3.connect(target)
        with copy:
            source.backup(copy)  # consistent even while another process reads it
        source.close()
        copy.close()
        return f"sqlite+aiosqlite:///{target}"
    asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{SCRATCH_PG}"'))
    asyncio.run(_pg(f'CREATE DATABASE "{SCRATCH_PG}" TEMPLATE "{SCALE_PG_NAME}"'))
    return scale_url.rsplit("/", 1)[0] + "/" + SCRATCH_PG


def drop_copy(url: str) -> None:
    if url.startswith("sqlite"):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{url.split('///', 1)[1]}{suffix}").unlink(missing_ok=True)
    else:
        asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{SCRATCH_PG}"'))


async def register_size(url: str) -> int:
    engine = create_engine(url, pooled=False)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(Worker))).scalar_one())
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--rows", type=int, default=100_000)
    add_scale_db_option(parser)
    args = parser.parse_args()
    scale_url = scale_db_url(args.scale_db)
    with tempfile.TemporaryDirectory() as tmp:
        data_key = new_data_key()
        copy_s = 0.0
        if scale_url is not None:
            started = time.perf_counter()
            url = scale_copy(scale_url, tmp)
            copy_s = time.perf_counter() - started
            data_key = SCALE_DATA_KEY
        else:
            url = args.database_url or f"sqlite+aiosqlite:///{tmp}/bench.db"
        try:
            before = asyncio.run(register_size(url)) if scale_url else 0
            broker_id, villages = asyncio.run(prepare(url))
            path = Path(tmp) / "workers.csv"
            write_csv(path, args.rows, villages, seed=time.time_ns())
            size_mb = path.stat().st_size / 1024 / 1024
            elapsed = run_import(url, data_key, tmp, path, broker_id)
            after = asyncio.run(register_size(url)) if scale_url else 0
        finally:
            if scale_url is not None:
                drop_copy(url)
        # The children's usage: the import process is the only one (ru_maxrss in KiB).
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak_mb = usage.ru_maxrss / 1024
        cpu = usage.ru_utime + usage.ru_stime
    backend = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    scale_lines = (
        [
            f"into a copy of the Chongqing-scale register: {before:,} workers before, "
            f"{after:,} after ({after - before:,} new; the rest matched people already "
            f"registered); copying the database took {copy_s:.0f} s (not in the time below)"
        ]
        if scale_url
        else []
    )
    record(
        "Worker register: bulk import" + (" at Chongqing scale" if scale_url else ""),
        [
            f"database: {backend}",
            *scale_lines,
            f"load average (1 min) when recorded: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
            f"`laowu workers import` of a {args.rows:,}-row CSV ({size_mb:.1f} MB, UTF-8 BOM): "
            f"{elapsed:.1f} s, {args.rows / elapsed:,.0f} rows/s (target < 60 s)",
            f"CPU time of the import process (user + system): {cpu:.1f} s — the work itself, "
            "whatever else the machine runs (the database server's own CPU not included)",
            f"peak RSS of the import process: {peak_mb:.0f} MB (target < 500 MB)",
        ],
    )


if __name__ == "__main__":
    main()
