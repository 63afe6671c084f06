"""Fresh databases for the billing benchmarks (SQLite file or a PostgreSQL database
recreated by name)."""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from marketplace.db import create_engine, session_factory, unit_of_work
from marketplace.regions import service as regions
from web.migrate import upgrade


def parse(description: str, *, flags: tuple[str, ...] = (), **extra: int) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--database-url", default=None, help="postgresql+asyncpg://…/name (recreated)"
    )
    for flag in flags:
        parser.add_argument(f"--{flag.replace('_', '-')}", action="store_true")
    for name, default in extra.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=default)
    return parser.parse_args()


async def fresh_database(url: str | None, *, with_regions: bool = False) -> str:
    if url is None:
        path = Path(tempfile.mkdtemp(prefix="laowu-bench-")) / "bench.db"
        url = f"sqlite+aiosqlite:///{path}"
    else:
        parts = urlsplit(url.replace("postgresql+asyncpg://", "postgresql://"))
        name = parts.path.lstrip("/")
        admin = urlunsplit((parts.scheme, parts.netloc, "/postgres", "", ""))
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
    engine = create_engine(url)
    try:
        await upgrade(engine)
        if with_regions:
            async with unit_of_work(session_factory(engine)) as session:
                await regions.load(session=session, rows=regions.read_csv(regions.bundled_csv()))
    finally:
        await engine.dispose()
    return url


def db_name(url: str) -> str:
    return "PostgreSQL" if url.startswith("postgresql") else "SQLite"


class Meter:
    """Wall-clock and this process's CPU time over a block, and the 1-minute load
    average when it ended (the machine is shared: a figure needs its load beside it).
    CPU time is the benchmark process only; the PostgreSQL server's work is not in it."""

    def __init__(self) -> None:
        self.wall = self.cpu = self.load = 0.0

    def __enter__(self) -> Meter:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu
        self.load = os.getloadavg()[0]

    def __str__(self) -> str:
        return f"{self.wall:.2f} s wall, {self.cpu:.2f} s CPU, load average {self.load:.2f}"
