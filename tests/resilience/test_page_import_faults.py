"""Fault drill: the page's background import (POST /workers/import, run inside
`laowu serve`) while the server is killed with SIGKILL at random moments. After each
restart the broker sees the job as interrupted once its heartbeat is stale — the drill
fast-forwards that minute by ageing the heartbeat — and uploads the same file again,
which continues. At the end the register holds each person of the file exactly once."""

from __future__ import annotations

import asyncio
import random
import re
import time
from datetime import timedelta

import httpx
from sqlalchemy import select, update
from sqlmodel import col

from marketplace.access import SYSTEM
from marketplace.accounts import service as accounts
from marketplace.accounts.models import UserCreate
from marketplace.brokers.models import Broker
from marketplace.clock import utcnow
from marketplace.db import unit_of_work
from marketplace.workers import import_jobs
from marketplace.workers.models import ImportJob
from tests.conftest import PASSWORD
from tests.resilience.conftest import Scene
from tests.resilience.harness import (
    Daemon,
    Outcome,
    id_numbers,
    laowu,
    workers_match_file,
    write_import_csv,
)
from tests.resilience.test_index_faults import free_port

SEED = 20261201
CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')


async def _broker_account(scene: Scene) -> tuple[str, int, str]:
    village = scene.villages[10]
    async with unit_of_work(scene.sessions) as session:
        user, _ = await accounts.create_user(
            session=session,
            actor=SYSTEM,
            cipher=scene.cipher,
            data=UserCreate(
                username="page_import_broker",
                display_name="页面导入经纪人",
                role="broker",
                region_code=village,
                password=PASSWORD,
            ),
        )
        broker = (
            await session.execute(select(Broker).where(col(Broker.user_id) == user.id))
        ).scalar_one()
        assert broker.id is not None
        return "page_import_broker", broker.id, village


async def _wait_up(base: str) -> None:
    deadline = time.monotonic() + 120
    async with httpx.AsyncClient(base_url=base) as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError("laowu serve did not start")


async def _upload(base: str, username: str, path: bytes) -> int:
    """Log in on the page and upload the file; the id of the job it started."""
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        page = await client.get("/login")
        token = CSRF.search(page.text)
        assert token, page.text[:300]
        login = await client.post(
            "/login",
            data={"username": username, "password": PASSWORD, "_csrf_token": token[1]},
        )
        assert login.status_code in (302, 303), login.text[:500]
        form = await client.get("/workers/import")
        token = CSRF.search(form.text)
        assert token, (form.status_code, re.sub(r"<[^>]+>|\s+", " ", form.text)[-600:])
        started = await client.post(
            "/workers/import",
            data={"_csrf_token": token[1]},
            files={"file": ("workers.csv", path, "text/csv")},
        )
        assert started.status_code == 303, started.text[:1000]
        return int(started.headers["location"].rsplit("/", 1)[-1])


async def _job(scene: Scene, job_id: int) -> ImportJob:
    async with scene.sessions() as session:
        job = await session.get(ImportJob, job_id)
        assert job is not None
        return job


async def drill_page_import(
    scene: Scene, rng: random.Random, *, rows: int, kills: int, outcome: Outcome
) -> None:
    username, broker_id, village = await _broker_account(scene)
    numbers = id_numbers(rng, rows)
    path = scene.var_dir / "page.csv"
    write_import_csv(path, numbers, [village], seed=rng.randrange(10**9))
    data = path.read_bytes()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = Daemon(
        [*laowu(), "serve", "--port", str(port)],
        {**scene.env, "LAOWU_RATE_LIMITS": "0"},
        scene.var_dir / "serve.log",
    )
    jobs: list[int] = []
    try:
        for attempt in range(kills + 1):
            await server.start()
            await _wait_up(base)
            jobs.append(await _upload(base, username, data))
            if attempt == kills:
                break
            # A random point of the job's progress: the kill lands inside the next batch.
            target = int(rng.uniform(0.05, 0.8) * rows)
            started = time.monotonic()
            while (job := await _job(scene, jobs[-1])).rows_done < target:
                assert job.status == "running", (job.status, job.message)
                await asyncio.sleep(0.05)
            await server.kill()
            outcome.kills.append(
                f"laowu serve {time.monotonic() - started:.2f} s into the job, "
                f"past {job.rows_done}/{job.rows_total} rows"
            )
            # A minute passes: the dead server's job is stale, the page calls it interrupted.
            async with unit_of_work(scene.sessions) as session:
                await session.execute(
                    update(ImportJob)
                    .where(col(ImportJob.id) == jobs[-1])
                    .values(heartbeat_at=utcnow() - import_jobs.STALE_AFTER - timedelta(seconds=1))
                )
        deadline = time.monotonic() + 120
        while (job := await _job(scene, jobs[-1])).status == "running":
            assert time.monotonic() < deadline, "the last import did not finish"
            await asyncio.sleep(0.3)
        assert job.status == "done", (job.status, job.message)
    finally:
        await server.stop()
    async with scene.sessions() as session:
        outcome.checks.update(await workers_match_file(session, scene.cipher, numbers, broker_id))
    outcome.checks["jobs"] = len(jobs)


async def test_page_import_survives_the_server_being_killed(scene: Scene) -> None:
    outcome = Outcome("page import")
    await drill_page_import(scene, random.Random(SEED), rows=1200, kills=1, outcome=outcome)
    print(outcome.line())
