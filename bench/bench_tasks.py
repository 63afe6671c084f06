"""Task targets: publishing a task for every village of Chongqing (11,270) in one
request under 10 s, and a district's review queue with 50,000 waiting submissions
at p95 under 200 ms, both over HTTP to a real `laowu serve`.

    python bench/bench_tasks.py [--database-url URL] [--requests 60] [--submissions 50000]

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
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import pyotp
from sqlalchemy import insert, select, text
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
from marketplace.tasks.models import EvidenceFile, ServiceTask, TaskSubmission, TaskType
from web.migrate import upgrade

PASSWORD = "bench-password-123"
DISTRICT = "500238"  # 巫溪县: the queue under test
OTHER = "500101"  # 万州区: a neighbour's submissions in the same tables
BATCH = 5000


async def prepare(url: str, cipher: DataCipher, submissions: int) -> dict[str, str]:
    engine = create_engine(url)
    factory = session_factory(engine)
    try:
        await upgrade(engine)
        async with unit_of_work(factory) as session:
            await regions.load(session=session, rows=regions.read_csv(regions.bundled_csv()))
        secrets = {}
        async with unit_of_work(factory) as session:
            for username, role, region in (
                ("bench_city", "city_admin", "50"),
                ("bench_district", "district_admin", DISTRICT),
            ):
                _, uri = await accounts.create_user(
                    session=session,
                    actor=SYSTEM,
                    cipher=cipher,
                    data=UserCreate(
                        username=username,
                        display_name="压测",
                        role=role,
                        region_code=region,
                        password=PASSWORD,
                    ),
                )
                secrets[username] = pyotp.parse_uri(uri or "").secret
        await _queue_rows(factory, submissions)
        if url.startswith("postgresql"):
            async with engine.connect() as conn:
                await conn.execute(text("COMMIT"))
                await conn.execute(text("ANALYZE"))
        return secrets
    finally:
        await engine.dispose()


async def prepare_scale(url: str, cipher: DataCipher, submissions: int) -> dict[str, str]:
    """On a Chongqing-scale database: the two accounts (made once; their TOTP secrets
    read back with the data key later) and the ``submissions`` waiting in 巫溪县 on top
    of the generated year (added once, upload keys ``bench-…``)."""
    engine = create_engine(url)
    factory = session_factory(engine)
    secrets: dict[str, str] = {}
    try:
        async with unit_of_work(factory) as session:
            for username, role, region in (
                ("bench_city", "city_admin", "50"),
                ("bench_district", "district_admin", DISTRICT),
            ):
                found = (
                    await session.execute(
                        select(col(User.totp_secret_enc)).where(col(User.username) == username)
                    )
                ).scalar_one_or_none()
                if found:
                    secrets[username] = cipher.decrypt(found, context="totp")
                    continue
                _, uri = await accounts.create_user(
                    session=session,
                    actor=SYSTEM,
                    cipher=cipher,
                    data=UserCreate(
                        username=username,
                        display_name="压测",
                        role=role,
                        region_code=region,
                        password=PASSWORD,
                    ),
                )
                secrets[username] = pyotp.parse_uri(uri or "").secret
        async with engine.connect() as conn:
            added = (
                await conn.execute(
                    # bench_load.py's own top-up ('bench-load-…') is not this queue.
                    text(
                        "SELECT count(*) FROM task_submission "
                        "WHERE upload_key LIKE 'bench-%' AND upload_key NOT LIKE 'bench-load-%'"
                    )
                )
            ).scalar_one()
        if not added:
            await _queue_rows(factory, submissions, use_existing=True)
            async with engine.connect() as conn:
                await conn.execute(text("COMMIT"))
                await conn.execute(text("ANALYZE"))
        return secrets
    finally:
        await engine.dispose()


async def _queue_rows(factory: object, submissions: int, *, use_existing: bool = False) -> None:
    """``submissions`` pending submissions in DISTRICT (a quarter as many in OTHER),
    each with a task, from 300 brokers, spread over 60 days, with 1–3 evidence rows.
    ``use_existing``: the district's brokers already there (up to 300) do the work."""
    rng = random.Random(2026)
    now = datetime.now(UTC)
    async with unit_of_work(factory) as session:  # type: ignore[arg-type]
        ttype = (
            await session.execute(select(TaskType).where(col(TaskType.code) == "policy_outreach"))
        ).scalar_one()
        plan = []
        for district, count in ((DISTRICT, submissions), (OTHER, submissions // 4)):
            villages = list(
                (
                    await session.execute(
                        select(col(Region.code)).where(
                            col(Region.level) == RegionLevel.village,
                            col(Region.code).startswith(district),
                        )
                    )
                ).scalars()
            )
            brokers = list(
                (
                    await session.execute(
                        select(Broker)
                        .where(
                            col(Broker.village_code).startswith(district),
                            col(Broker.user_id).is_not(None),
                        )
                        .order_by(col(Broker.id))
                        .limit(300)
                    )
                ).scalars()
            )
            if not (use_existing and brokers):
                brokers = [
                    Broker(name=f"压测{district}{i}", village_code=rng.choice(villages))
                    for i in range(300)
                ]
                session.add_all(brokers)
                await session.flush()
            plan.append((district, count, brokers))
        sha = "0" * 64
        for district, count, brokers in plan:
            for start in range(0, count, BATCH):
                size = min(BATCH, count - start)
                chosen = [rng.choice(brokers) for _ in range(size)]
                deadline = now + timedelta(days=20)
                task_ids = (
                    (
                        await session.execute(
                            insert(ServiceTask).returning(
                                col(ServiceTask.id), sort_by_parameter_order=True
                            ),
                            [
                                {
                                    "task_type_id": ttype.id,
                                    "task_type_code": ttype.code,
                                    "region_code": b.village_code,
                                    "district_code": district,
                                    "quantity": 2,
                                    "deadline": deadline,
                                    "period": deadline.strftime("%Y-%m"),
                                    "instructions": "",
                                    "status": "submitted",
                                    "source": "published",
                                    "assigned": False,
                                    "broker_id": b.id,
                                    "claimed_at": now - timedelta(days=61),
                                    "created_at": now - timedelta(days=61),
                                }
                                for b in chosen
                            ],
                        )
                    )
                    .scalars()
                    .all()
                )
                sub_ids = (
                    (
                        await session.execute(
                            insert(TaskSubmission).returning(
                                col(TaskSubmission.id), sort_by_parameter_order=True
                            ),
                            [
                                {
                                    "task_id": tid,
                                    "broker_id": b.id,
                                    "district_code": district,
                                    "region_code": b.village_code,
                                    "quantity": 2,
                                    "note": "",
                                    "worker_ids": [],
                                    "upload_key": f"bench-{tid}",
                                    "status": "pending",
                                    "submitted_at": now
                                    - timedelta(seconds=rng.randint(0, 60 * 86400)),
                                }
                                for tid, b in zip(task_ids, chosen, strict=True)
                            ],
                        )
                    )
                    .scalars()
                    .all()
                )
                await session.execute(
                    insert(EvidenceFile),
                    [
                        {
                            "submission_id": sid,
                            "sha256": sha[: -len(str(k))] + str(k),
                            "media_type": "image/jpeg",
                            "size": 100_000,
                            "filename": "现场.jpg",
                            "created_at": now,
                        }
                        for sid in sub_ids
                        for k in range(1 + sid % 3)
                    ],
                )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _token(client: httpx.Client, username: str, secret: str) -> dict[str, str]:
    body = {"username": username, "password": PASSWORD, "otp": pyotp.TOTP(secret).now()}
    response = client.post("/api/v1/auth/login", json=body)
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def measure(
    url: str, data_key: str, secrets: dict[str, str], runs: int, tmp: str, bulk_runs: int = 3
) -> dict[str, object]:
    port = free_port()
    server = subprocess.Popen(
        [laowu_command(), "serve", "--port", str(port)],
        env={**laowu_env(url, data_key, tmp), "LAOWU_OUTBOX_IN_PROCESS": "0"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    out: dict[str, object] = {}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            for _ in range(200):
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            district = _token(client, "bench_district", secrets["bench_district"])
            samples = []
            for n in range(runs):
                started = time.perf_counter()
                response = client.get(
                    "/api/v1/review-queue",
                    params={"limit": 50, "offset": (n % 3) * 50},
                    headers=district,
                )
                samples.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
            out["queue_total"] = response.json()["total"]
            out["queue"] = percentiles(samples)
            city = _token(client, "bench_city", secrets["bench_city"])
            body = {
                "task_type": "hr_database_update",
                "region_code": "50",
                "quantity": 20,
                "deadline": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
                "instructions": "全市各村（社区）核实台账",
            }
            bulk = []
            for _ in range(bulk_runs):
                started = time.perf_counter()
                response = client.post("/api/v1/tasks/bulk", json=body, headers=city)
                bulk.append(time.perf_counter() - started)
                response.raise_for_status()
            out["bulk_created"] = response.json()["created"]
            out["bulk"] = bulk
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--submissions", type=int, default=50_000)
    add_scale_db_option(parser)
    args = parser.parse_args()
    if args.scale_db:
        measure_scale(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{tmp}/bench.db"
        data_key = new_data_key()
        started = time.perf_counter()
        secrets = asyncio.run(prepare(url, DataCipher(decode_key(data_key)), args.submissions))
        prepared = time.perf_counter() - started
        result = measure(url, data_key, secrets, args.requests, tmp)
    backend = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    queue = result["queue"]
    bulk = result["bulk"]
    assert isinstance(queue, dict)
    assert isinstance(bulk, list)
    record(
        "Tasks: bulk publish and the review queue",
        [
            f"database: {backend}",
            f"set-up: {args.submissions:,} pending submissions in 巫溪县 and "
            f"{args.submissions // 4:,} in 万州区, each with a task and 1–3 evidence rows "
            f"({prepared:.0f} s)",
            f"POST /api/v1/tasks/bulk for 重庆市 ({result['bulk_created']:,} villages, one task "
            f"each), 3 requests: " + ", ".join(f"{s:.2f} s" for s in bulk) + " (target < 10 s)",
            f"GET /api/v1/review-queue as 巫溪县's district admin ({result['queue_total']:,} "
            f"waiting, pages of 50), {args.requests} requests: p50 {queue['p50']:.1f} ms, "
            f"p95 {queue['p95']:.1f} ms, max {queue['max']:.1f} ms (target p95 < 200 ms)",
            f"load average at the end {load_average()}",
        ],
    )


def measure_scale(args: argparse.Namespace) -> None:
    """Both targets on a Chongqing-scale database (bench/bench_scale_data.py): 1,000,000
    tasks of the generated year in the tables, plus the waiting queue under test. One
    bulk publish (it adds 11,270 open tasks to the shared database each time)."""
    url = scale_db_url(args.scale_db)
    assert url is not None
    started = time.perf_counter()
    secrets = asyncio.run(
        prepare_scale(url, DataCipher(decode_key(SCALE_DATA_KEY)), args.submissions)
    )
    prepared = time.perf_counter() - started
    cpu0 = cpu_seconds()
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(url, SCALE_DATA_KEY, secrets, args.requests, tmp, bulk_runs=1)
    queue = result["queue"]
    bulk = result["bulk"]
    assert isinstance(queue, dict)
    assert isinstance(bulk, list)
    record(
        f"Tasks at Chongqing scale: bulk publish and the review queue, {db_name(url)}",
        [
            f"database: {db_name(url)}, Chongqing-scale data set {db_label(url)} "
            "(bench/bench_scale_data.py: 1,000,000 tasks over a year, their submissions "
            f"and ledger) plus {args.submissions:,} waiting submissions in 巫溪县 and "
            f"{args.submissions // 4:,} in 万州区 (added once; {prepared:.0f} s this run)",
            "POST /api/v1/tasks/bulk for 重庆市 "
            f"({result['bulk_created']:,} villages, one task each), through `laowu serve`: "
            + ", ".join(f"{s:.2f} s" for s in bulk)
            + " (target < 10 s)",
            f"GET /api/v1/review-queue as 巫溪县's district admin ({result['queue_total']:,} "
            f"waiting, pages of 50), {args.requests} requests: p50 {queue['p50']:.1f} ms, "
            f"p95 {queue['p95']:.1f} ms, max {queue['max']:.1f} ms (target p95 < 200 ms)",
            f"CPU of this process (client; the server is a child) and finished children "
            f"{cpu_seconds() - cpu0:.1f} s; load average at the end {load_average()}",
        ],
    )


if __name__ == "__main__":
    main()
