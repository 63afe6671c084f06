"""SQLite with concurrent writers over HTTP: two `laowu serve` processes (each also
draining the outbox) on one database file, several brokers creating workers and
importing files at once. With the default busy timeout every write succeeds; with the
lock made scarce (a 1 ms busy timeout) a write either succeeds or is refused with 503
and Retry-After — never a 500 — and nothing is half-written."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlmodel import col

from marketplace.access import SYSTEM
from marketplace.accounts import service as accounts
from marketplace.accounts.models import UserCreate
from marketplace.db import unit_of_work
from marketplace.events import OutboxEvent
from marketplace.workers.models import Worker, WorkerChange
from tests.conftest import PASSWORD
from tests.resilience.conftest import Scene
from tests.resilience.harness import Daemon, id_numbers, laowu, name_of
from tests.resilience.test_index_faults import free_port

SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
CLIENTS = 6


async def _brokers(scene: Scene) -> list[tuple[str, str]]:
    """(username, home village) of one broker account per client."""
    made = []
    async with unit_of_work(scene.sessions) as session:
        for n in range(CLIENTS):
            village = scene.villages[n + 1]
            await accounts.create_user(
                session=session,
                actor=SYSTEM,
                cipher=scene.cipher,
                data=UserCreate(
                    username=f"drill_broker_{n}",
                    display_name=f"经纪人{n}",
                    role="broker",
                    region_code=village,
                    password=PASSWORD,
                ),
            )
            made.append((f"drill_broker_{n}", village))
    return made


async def _wait_up(base: str) -> None:
    deadline = time.monotonic() + 90
    async with httpx.AsyncClient(base_url=base) as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.3)
    raise AssertionError("laowu serve did not start")


def _csv(numbers: list[str], village: str, start: int) -> bytes:
    head = "姓名,身份证号,户籍村代码\n"
    rows = "".join(f"{name_of(start + i, '并发')},{n},{village}\n" for i, n in enumerate(numbers))
    return (head + rows).encode("utf-8")


async def _client_run(
    base: str,
    username: str,
    village: str,
    numbers: list[str],
    start: int,
    seen: list[tuple[str, int, dict[str, str], list[str]]],
) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        for _ in range(100):  # a busy login says when to come back; a phone would
            login = await client.post(
                "/api/v1/auth/login", json={"username": username, "password": PASSWORD}
            )
            if login.status_code != 503:
                break
            assert int(login.headers["Retry-After"]) >= 1
            await asyncio.sleep(0.3)
        assert login.status_code == 200, login.text
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        rest = list(numbers)
        n = start
        while rest:
            if len(rest) >= 5 and n % 3 == 0:  # a small file import
                chunk, rest = rest[:5], rest[5:]
                response = await client.post(
                    "/api/v1/workers/import",
                    files={"file": ("workers.csv", _csv(chunk, village, n), "text/csv")},
                    headers=headers,
                )
                seen.append(("import", response.status_code, dict(response.headers), chunk))
                n += 5
                continue
            number, rest = rest[0], rest[1:]
            body: dict[str, Any] = {
                "name": name_of(n, "并发"),
                "id_number": number,
                "hukou_village_code": village,
                "skills": ["电焊"],
            }
            response = await client.post("/api/v1/workers", json=body, headers=headers)
            seen.append(("create", response.status_code, dict(response.headers), [number]))
            n += 1


async def _hammer(scene: Scene, busy_ms: str, per_client: int, seed: int) -> list[Any]:
    brokers = await _brokers(scene)
    port = free_port()
    env = {
        **scene.env,
        "LAOWU_SQLITE_BUSY_TIMEOUT_MS": busy_ms,
        "LAOWU_RATE_LIMITS": "0",
        "LAOWU_OUTBOX_IN_PROCESS": "1",
    }
    server = Daemon(
        [*laowu(), "serve", "--port", str(port), "--workers", "2"], env, scene.var_dir / "s.log"
    )
    base = f"http://127.0.0.1:{port}"
    numbers = id_numbers(random.Random(seed), per_client * CLIENTS)
    seen: list[tuple[str, int, dict[str, str], list[str]]] = []
    await server.start()
    try:
        await _wait_up(base)
        await asyncio.gather(
            *(
                _client_run(
                    base,
                    username,
                    village,
                    numbers[i * per_client : (i + 1) * per_client],
                    i * per_client,
                    seen,
                )
                for i, (username, village) in enumerate(brokers)
            )
        )
    finally:
        await server.stop()
    return seen


async def _check_nothing_half_written(scene: Scene, seen: list[Any]) -> Counter[int]:
    statuses: Counter[int] = Counter(status for _, status, _, _ in seen)
    stored_numbers: set[str] = set()
    async with scene.sessions() as session:
        workers = list((await session.execute(select(Worker))).scalars())
        for worker in workers:
            assert worker.id_number_hash is not None
            stored_numbers.add(worker.id_number_hash)
            changes = (
                await session.execute(
                    select(func.count())
                    .select_from(WorkerChange)
                    .where(col(WorkerChange.worker_id) == worker.id)
                )
            ).scalar_one()
            assert changes == 1, f"worker {worker.id} has {changes} history rows"
        events = (
            await session.execute(
                select(func.count())
                .select_from(OutboxEvent)
                .where(col(OutboxEvent.name) == "worker.changed")
            )
        ).scalar_one()
        assert events == len(workers)
    for kind, status, headers, numbers in seen:
        hashes = {scene.cipher.lookup_hash(n) for n in numbers}
        if status in (200, 201):
            assert hashes <= stored_numbers, (kind, status)
        elif status == 503:
            assert int(headers["retry-after"]) >= 1
            assert not hashes & stored_numbers, f"a refused {kind} left rows behind"
        else:
            raise AssertionError(f"{kind} answered {status}")
    return statuses


@SQLITE
async def test_concurrent_writers_all_succeed_with_the_default_busy_timeout(
    scene: Scene,
) -> None:
    seen = await _hammer(scene, busy_ms="", per_client=12, seed=1)
    statuses = await _check_nothing_half_written(scene, seen)
    assert set(statuses) <= {200, 201}, statuses


@SQLITE
async def test_a_contended_lock_is_a_503_with_retry_after_never_a_500(scene: Scene) -> None:
    seen = await _hammer(scene, busy_ms="1", per_client=12, seed=2)
    statuses = await _check_nothing_half_written(scene, seen)
    assert statuses[500] == 0, statuses
    print(dict(statuses))
