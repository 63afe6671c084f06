"""Candidates for a job at scale: `GET /api/v1/jobs/{id}/candidates` over 1,000,000
workers (bench/scale_data.py), target p95 < 100 ms; also the worker's matches.

    .venv/bin/python -m bench.bench_candidates [--workers N] [--jobs N] [--requests N]
        [--database-url postgresql+asyncpg://…]

Steps: generate (or reuse) the data, rebuild the candidate prefilter
(``marketplace.placements.candidates.rebuild``), then time requests in-process (ASGI,
no socket) as a city admin (the widest pool: every worker of the city), a broker
(their villages) and an employer (consenting workers only, the job's organisation),
and the jobs-for-a-worker page as the worker's broker. Results go to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import pyotp
from sqlalchemy import func, select
from sqlmodel import col

from bench.common import (
    SCALE_DATA_KEY,
    add_scale_db_option,
    cpu_seconds,
    db_label,
    db_name,
    in_loop_client,
    load_average,
    percentiles,
    record,
    scale_db_url,
)
from bench.scale_data import counts as scale_counts
from bench.scale_data import generate, prepare
from marketplace.access import SYSTEM
from marketplace.accounts import service as accounts
from marketplace.accounts.models import UserCreate
from marketplace.db import unit_of_work
from marketplace.jobs.models import Job, JobStatus
from marketplace.organizations.models import OrganizationMember
from marketplace.placements import candidates
from marketplace.placements.models import WorkerOccupation
from marketplace.workers.models import Worker
from web.app import create_app
from web.settings import DatabaseSettings, SecuritySettings, Settings

DATA = Path(os.environ.get("LAOWU_BENCH_DATA", "/work/benchdata-w5"))
PASSWORD = "bench-password-123456"


async def account(app: Any, role: str, region: str) -> tuple[int, dict[str, str]]:
    name = f"bc_{role}_{random.randrange(10**9)}"
    async with unit_of_work(app.state.sessions) as session:
        user, uri = await accounts.create_user(
            session=session,
            actor=SYSTEM,
            cipher=app.state.cipher,
            data=UserCreate(
                username=name, display_name=name, role=role, region_code=region, password=PASSWORD
            ),
        )
    body: dict[str, Any] = {"username": name, "password": PASSWORD}
    if uri:
        body["otp"] = pyotp.TOTP(pyotp.parse_uri(uri).secret).now()
    app.state.bench_bodies.append(body)
    assert user.id is not None
    return user.id, body


async def login(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, str]:
    response = await client.post("/api/v1/auth/login", json=body)
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def timed(client: httpx.AsyncClient, urls: list[str], headers: dict[str, str]) -> Any:
    """Wall time and this process's CPU time (all its threads, the SQLite one too) per
    request: on a machine shared by eight developers the wall time mostly measures the
    wait for a core, the CPU time what a request costs."""
    samples, cpu, sizes = [], [], []
    for url in urls:
        started, cpu_started = time.perf_counter(), time.process_time()
        response = await client.get(url, headers=headers)
        samples.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
        assert response.status_code == 200, response.text
        sizes.append(response.json()["total"])
    return (percentiles(samples), percentiles(cpu)), sum(sizes) / len(sizes)


def fmt(p: tuple[dict[str, float], dict[str, float]]) -> str:
    wall, cpu = p
    return (
        f"wall p50 {wall['p50']:.1f} / p95 {wall['p95']:.1f} / p99 {wall['p99']:.1f} ms, "
        f"CPU p50 {cpu['p50']:.1f} / p95 {cpu['p95']:.1f} ms"
    )


async def run(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    scale_url = scale_db_url(args.scale_db)
    if scale_url is not None:
        url = scale_url
        counts = await scale_counts(url)
        source = f"Chongqing-scale database {db_label(url)} (bench/bench_scale_data.py)"
    else:
        url = args.database_url or f"sqlite+aiosqlite:///{DATA / 'candidates.db'}"
        await prepare(url)
        counts = await generate(url, workers=args.workers, jobs=args.jobs)
        source = "bench/scale_data.py seed 5"
    gen_s = time.perf_counter() - started
    settings = Settings(
        env="test",
        db=DatabaseSettings(url=url),
        security=SecuritySettings(secret_key="bench" * 8, data_key=SCALE_DATA_KEY),
        var_dir=DATA / "var-candidates",
        outbox_in_process=False,
    )
    app = create_app(settings)
    app.state.bench_bodies = []
    sessions = app.state.sessions
    started = time.perf_counter()
    rows = 0
    if not args.skip_rebuild:
        async with unit_of_work(sessions) as session:
            rows = await candidates.rebuild(session)
    rebuild_s = time.perf_counter() - started
    rng = random.Random(7)
    async with sessions() as session:
        jobs = list(
            (
                await session.execute(
                    select(col(Job.id), col(Job.organization_id), col(Job.work_region_code))
                    .where(col(Job.status) == JobStatus.published)
                    .order_by(col(Job.id))
                )
            ).all()
        )
        sample = rng.sample(jobs, min(args.requests, len(jobs)))
        # A broker with workers: the broker of a random worker.
        some = (
            await session.execute(
                select(col(Worker.id), col(Worker.broker_id), col(Worker.hukou_village_code))
                .order_by(col(Worker.id))
                .limit(args.requests)
                .offset(rng.randrange(max(1, counts.workers - args.requests)))
            )
        ).all()
        prefilter_rows = (
            await session.execute(select(func.count()).select_from(WorkerOccupation))
        ).scalar_one()
    _, city_body = await account(app, "city_admin", "50")
    # A broker of the sampled workers' village: they see every worker registered there.
    broker_village = some[0][2]
    _, broker_body = await account(app, "broker", broker_village)
    broker_workers = [w for w, _, v in some if v == broker_village]
    # An employer account per sampled organisation (one organisation per account).
    org = sample[0][1]
    employer_user, employer_body = await account(app, "employer", "500101")
    async with unit_of_work(sessions) as session:
        session.add(OrganizationMember(organization_id=org, user_id=employer_user))
    org_jobs = [j for j, o, _ in jobs if o == org][: args.requests] or [sample[0][0]]
    lines = [
        f"data: {counts.workers:,} workers, {counts.jobs:,} jobs ({len(jobs):,} published), "
        f"{source} ({gen_s:.0f} s incl. any generation); {db_name(url)}",
        f"candidate prefilter rebuild: {rows:,} rows (= {prefilter_rows:,}) in {rebuild_s:.0f} s"
        if not args.skip_rebuild
        else f"candidate prefilter kept from an earlier run ({prefilter_rows:,} rows)",
    ]
    async with in_loop_client(app) as client:
        city = await login(client, city_body)
        broker = await login(client, broker_body)
        employer = await login(client, employer_body)
        urls = [f"/api/v1/jobs/{j}/candidates?limit=20" for j, _, _ in sample]
        await timed(client, urls[:5], city)  # warm caches
        p, avg = await timed(client, urls, city)
        lines.append(
            f"`GET /api/v1/jobs/{{id}}/candidates` as city admin (all workers of the city), "
            f"{len(urls)} random published jobs, limit 20: {fmt(p)} (target p95 < 100); "
            f"pool ranked per request {avg:.0f}"
        )
        p, avg = await timed(client, urls, broker)
        lines.append(f"same jobs as a broker (their villages' workers): {fmt(p)}; pool {avg:.1f}")
        p, avg = await timed(
            client, [f"/api/v1/jobs/{j}/candidates?limit=20" for j in org_jobs], employer
        )
        lines.append(
            f"as the employer of one organisation ({len(org_jobs)} of its jobs; consenting "
            f"workers only, masked): {fmt(p)}; pool {avg:.0f}"
        )
        worker_urls = [f"/api/v1/workers/{w}/matches?limit=20" for w in broker_workers]
        p, avg = await timed(client, worker_urls * max(1, 50 // len(worker_urls)), broker)
        lines.append(
            f"`GET /api/v1/workers/{{id}}/matches` as the broker ({len(worker_urls)} workers, "
            f"repeated to ≥ 50 requests): {fmt(p)}; jobs ranked {avg:.0f}"
        )
    lines.append(
        f"load average at the end {load_average()}; CPU time of this process {cpu_seconds():.0f} s"
    )
    lines.append(
        "HTTP is in-process ASGI (no socket); timings include authentication, the prefilter "
        "queries, loading the pool's rows, ranking and JSON"
    )
    title = "Candidates for a job (1M workers)"
    if scale_url is not None:
        title = (
            f"Candidates for a job at Chongqing scale ({counts.workers:,} workers), {db_name(url)}"
        )
    record(title, lines)
    await app.state.engine.dispose()


def main() -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", default=os.environ.get("LAOWU_BENCH_DATABASE_URL"))
    parser.add_argument("--workers", type=int, default=1_000_000)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    add_scale_db_option(parser)
    parser.add_argument(
        "--skip-rebuild", action="store_true", help="keep the prefilter of an earlier run"
    )
    DATA.mkdir(parents=True, exist_ok=True)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
