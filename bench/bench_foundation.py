"""Foundation targets: `laowu regions load` under 5 s (idempotent), and the coverage
API for 重庆市 under 300 ms, with every village populated and 12,000 active brokers.

    python bench/bench_foundation.py [--database-url URL] [--requests 60]

Runs on a temporary SQLite file by default; pass a PostgreSQL URL
(postgresql+asyncpg://…) to measure there. Appends the figures to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import pyotp
from sqlalchemy import select, text, update
from sqlmodel import col

from bench.common import (
    SCALE_DATA_KEY,
    add_scale_db_option,
    cpu_seconds,
    db_label,
    db_name,
    laowu_command,
    laowu_env,
    load_average,
    percentiles,
    record,
    scale_db_url,
)
from marketplace.access import SYSTEM
from marketplace.accounts import service as accounts
from marketplace.accounts.models import User, UserCreate
from marketplace.brokers.models import Broker
from marketplace.crypto import DataCipher, decode_key, new_data_key
from marketplace.db import create_engine, session_factory, unit_of_work
from marketplace.regions import service as regions
from marketplace.regions.models import Region, RegionLevel
from web.migrate import upgrade

BROKERS = 12_000
PASSWORD = "bench-password-123"


async def prepare(url: str) -> dict[str, float]:
    engine = create_engine(url)
    factory = session_factory(engine)
    await upgrade(engine)
    rows = list(regions.read_csv(regions.bundled_csv()))
    timings = {}
    for attempt in ("first", "second"):
        started = time.perf_counter()
        async with unit_of_work(factory) as session:
            count = await regions.load(session=session, rows=rows)
        timings[f"regions load ({attempt} run, {count} rows)"] = time.perf_counter() - started
    rng = random.Random(2026)
    async with unit_of_work(factory) as session:
        villages = list(
            (
                await session.execute(
                    select(col(Region.code)).where(col(Region.level) == RegionLevel.village)
                )
            ).scalars()
        )
        await session.execute(text("DELETE FROM broker"))
        for code in villages:
            await session.execute(
                update(Region)
                .where(col(Region.code) == code)
                .values(population=rng.choice([None, rng.randint(300, 16_000)]))
            )
        picks = [rng.choice(villages) for _ in range(BROKERS)]
        session.add_all(Broker(name=f"经纪人{i}", village_code=v) for i, v in enumerate(picks))
    await engine.dispose()
    return timings


async def create_reader(url: str, cipher: DataCipher, username: str = "bench_city") -> str:
    """A city-level finance account (a TOTP role); returns its TOTP secret (read back
    with the data key if the account is there from an earlier run)."""
    engine = create_engine(url)
    try:
        async with unit_of_work(session_factory(engine)) as session:
            found = (
                await session.execute(
                    select(col(User.totp_secret_enc)).where(col(User.username) == username)
                )
            ).scalar_one_or_none()
            if found:
                return cipher.decrypt(found, context="totp")
            _, uri = await accounts.create_user(
                session=session,
                actor=SYSTEM,
                cipher=cipher,
                data=UserCreate(
                    username=username,
                    display_name="压测",
                    role="finance",
                    region_code="50",
                    password=PASSWORD,
                ),
            )
    finally:
        await engine.dispose()
    return pyotp.parse_uri(uri or "").secret


async def measure_service(url: str, runs: int) -> dict[str, float]:
    engine = create_engine(url)
    samples = []
    try:
        for _ in range(runs):
            async with session_factory(engine)() as session:
                started = time.perf_counter()
                await regions.coverage(session=session, code="50")
                samples.append((time.perf_counter() - started) * 1000)
    finally:
        await engine.dispose()
    return percentiles(samples)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def measure_http(
    url: str, data_key: str, secret: str, runs: int, tmp: str, username: str = "bench_city"
) -> dict[str, float]:
    """Against a real `laowu serve` process on 127.0.0.1."""
    port = free_port()
    env = laowu_env(url, data_key, tmp)
    laowu = laowu_command()
    server = subprocess.Popen(
        [str(laowu), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=10) as client:
            for _ in range(600):  # up to a minute: start-up waits for a core under load
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            body = {"username": username, "password": PASSWORD, "otp": pyotp.TOTP(secret).now()}
            token = client.post("/api/v1/auth/login", json=body).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            samples = []
            for _ in range(runs):
                started = time.perf_counter()
                response = client.get("/api/v1/regions/50/coverage", headers=headers)
                samples.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
            top = response.json()
            print(
                f"重庆市: villages={top['villages']} covered={top['villages_covered']} "
                f"required={top['brokers_required']} active={top['brokers_active']} "
                f"shortfall={top['shortfall']}"
            )
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=20)
    return percentiles(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--requests", type=int, default=60)
    add_scale_db_option(parser)
    args = parser.parse_args()
    if args.scale_db:
        measure_scale(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{tmp}/bench.db"
        timings = asyncio.run(prepare(url))
        data_key = new_data_key()
        secret = asyncio.run(create_reader(url, DataCipher(decode_key(data_key))))
        engine_p = asyncio.run(measure_service(url, args.requests))
        http_p = measure_http(url, data_key, secret, args.requests, tmp)
    backend = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    lines = [f"database: {backend}"]
    lines += [f"{name}: {seconds:.2f} s (target < 5 s)" for name, seconds in timings.items()]
    lines.append(
        "coverage of 重庆市 (11,270 villages, 12,000 active brokers), service only, "
        f"{args.requests} runs: p50 {engine_p['p50']:.1f} ms, p95 {engine_p['p95']:.1f} ms, "
        f"max {engine_p['max']:.1f} ms"
    )
    lines.append(
        f"GET /api/v1/regions/50/coverage over HTTP to `laowu serve` (1 process), "
        f"{args.requests} requests: "
        f"p50 {http_p['p50']:.1f} ms, p95 {http_p['p95']:.1f} ms, max {http_p['max']:.1f} ms "
        "(target < 300 ms)"
    )
    lines.append(f"load average at the end {load_average()}")
    record("Foundation: regions load and city coverage", lines)


async def reload_regions(url: str) -> tuple[int, float]:
    engine = create_engine(url)
    try:
        rows = list(regions.read_csv(regions.bundled_csv()))
        started = time.perf_counter()
        async with unit_of_work(session_factory(engine)) as session:
            count = await regions.load(session=session, rows=rows)
        return count, time.perf_counter() - started
    finally:
        await engine.dispose()


async def scale_counts_of(url: str) -> tuple[int, int]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            brokers = (
                await conn.execute(text("SELECT count(*) FROM broker WHERE status = 'active'"))
            ).scalar_one()
            workers = (await conn.execute(text("SELECT count(*) FROM worker"))).scalar_one()
            return int(brokers), int(workers)
    finally:
        await engine.dispose()


def measure_scale(args: argparse.Namespace) -> None:
    """On a Chongqing-scale database (bench/bench_scale_data.py): `regions load` again
    over the full database (idempotent), and coverage with its brokers and workers."""
    url = scale_db_url(args.scale_db)
    assert url is not None
    count, reload_s = asyncio.run(reload_regions(url))
    username = "bench_foundation_finance"
    secret = asyncio.run(
        create_reader(url, DataCipher(decode_key(SCALE_DATA_KEY)), username=username)
    )
    brokers, workers = asyncio.run(scale_counts_of(url))
    cpu0 = cpu_seconds()
    engine_p = asyncio.run(measure_service(url, args.requests))
    with tempfile.TemporaryDirectory() as tmp:
        http_p = measure_http(url, SCALE_DATA_KEY, secret, args.requests, tmp, username=username)
    record(
        f"Foundation at Chongqing scale: regions load and city coverage, {db_name(url)}",
        [
            f"database: {db_name(url)}, Chongqing-scale data set {db_label(url)} "
            f"(bench/bench_scale_data.py): {brokers:,} active brokers, {workers:,} workers",
            f"regions load again over the full database ({count} rows, idempotent): "
            f"{reload_s:.2f} s (target < 5 s)",
            f"coverage of 重庆市, service only, {args.requests} runs: p50 "
            f"{engine_p['p50']:.1f} ms, p95 {engine_p['p95']:.1f} ms, max {engine_p['max']:.1f} ms",
            f"GET /api/v1/regions/50/coverage over HTTP to `laowu serve` (1 process), "
            f"{args.requests} requests: p50 {http_p['p50']:.1f} ms, p95 {http_p['p95']:.1f} ms, "
            f"max {http_p['max']:.1f} ms (target < 300 ms)",
            f"CPU of this process {cpu_seconds() - cpu0:.1f} s; load average at the end "
            f"{load_average()}",
        ],
    )


if __name__ == "__main__":
    main()
