"""HTTP load test: a realistic mix of phone, page and public requests against
`laowu serve --workers N` on 127.0.0.1, with wrk (Debian package `wrk`).

    python bench/bench_load.py [--database-url URL] [--processes 1,2,4] [--duration 20]

Without ``--database-url`` it builds (once, then reuses) a SQLite database under
``var/bench-load/``: migrations, the region tree, ``laowu demo`` and a generated set of
``--workers`` workers and ``--jobs`` jobs (bench/scale_data.py) with the search index
and the candidate table rebuilt. With ``--database-url`` it runs against whatever
database it is given (say one `laowu demo --scale chongqing` filled; pass the data key
it was made with in LAOWU_DATA_KEY) and only adds what the mix needs and the database
lacks: a pool of submissions waiting for review in each district whose admin it drives.

Before each run the script reads the database for valid logins and ids: broker accounts
with their own workers, published jobs, (worker, job) pairs not yet recommended,
district admins with pending submissions, employers with their organisation. It opens
one API (bearer) and one page (cookie) session per account straight in the database
(as a login would, without passwords or TOTP), writes a per-thread request plan for
bench/load/mix.lua, starts the server with LAOWU_RATE_LIMITS=0 (rate limits off: one
client address sends everything), warms it up, and runs wrk with as many threads as
connections, so each response's kind, status and latency are exact.

Reported per server-process count: throughput, p50/p95/p99 (all requests and per kind),
errors (a status the scenario does not expect, timeouts, socket errors), peak RSS per
server process (VmHWM), CPU seconds of the server processes and of wrk (the load
generator shares the machine's cores), and the 1-minute load average. Appends the
figures to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, insert, inspect, select, text, update
from sqlmodel import col

from bench.common import laowu_command, percentiles, record
from marketplace.accounts.models import AuthSession
from marketplace.accounts.service import hash_token
from marketplace.brokers.models import Broker
from marketplace.crypto import DataCipher, decode_key
from marketplace.db import create_engine, is_sqlite, session_factory, unit_of_work
from marketplace.regions.models import Region
from marketplace.tasks.models import (
    DistrictTaskSetting,
    EvidenceFile,
    ServiceTask,
    TaskSubmission,
    TaskType,
)
from web.scale.generate import Others

ROOT = Path(__file__).resolve().parent.parent
MIX_LUA = Path(__file__).resolve().parent / "load" / "mix.lua"
DEFAULT_DIR = ROOT / "var" / "bench-load"
# Issue 9's targets for the mix on this 2-core machine.
TARGET_RATE, TARGET_P95_MS, TARGET_RSS_MIB = 1_000, 150, 300
PENDING_PER_DISTRICT = 3000  # the review queue each driven district admin works through
# The server's access line (web/ops/observability.py) of a request answered with a 5xx,
# and the error line of one whose client had gone.
SERVER_ERROR = re.compile(r"laowu\.access \[([^\]]*)\] [A-Z]+ \S+ 5\d\d ")
DISCONNECTED = re.compile(r"\[([^\]]*)\] HTTP 500 on \S+: client disconnected prematurely")


@dataclass(frozen=True)
class Kind:
    """One kind of request in the mix: who sends it, its weight (per 1,000 requests)
    and the statuses the scenario expects."""

    name: str
    role: str
    weight: int
    expect: frozenset[int] = frozenset({200})


# Per 1,000 requests. Mostly reads; about 4 % writes. Brokers on phones dominate
# (10,000+ brokers, each checking their register, searching and recommending several
# times a day); officers review; employers post and follow their jobs; the public
# rankings page is what anonymous visitors open.
MIX: tuple[Kind, ...] = (
    Kind("broker.workers.api", "broker", 100),  # GET /api/v1/workers (phone list)
    Kind("broker.worker.api", "broker", 60),  # GET /api/v1/workers/{id}
    Kind("broker.workers.page", "broker", 60),  # GET /workers (page)
    Kind("broker.search.workers", "broker", 80),  # GET /api/v1/workers/search?q=
    Kind("broker.search.jobs", "broker", 50),  # GET /api/v1/jobs/search?q=
    Kind("broker.candidates.api", "broker", 60),  # GET /api/v1/jobs/{id}/candidates
    Kind("broker.candidates.page", "broker", 40),  # GET /matching/jobs/{id}
    Kind("broker.recommend", "broker", 20, frozenset({201})),  # POST /api/v1/recommendations
    Kind("broker.tasks.api", "broker", 40),  # GET /api/v1/tasks?mine=true
    Kind("broker.home.page", "broker", 40),  # GET / (page)
    Kind("officer.queue.api", "district_admin", 50),  # GET /api/v1/review-queue
    Kind("officer.queue.page", "district_admin", 40),  # GET /tasks/review
    Kind("officer.task.api", "district_admin", 30),  # GET /api/v1/tasks/{id}
    Kind("officer.approve", "district_admin", 10),  # POST /api/v1/tasks/{id}/review
    Kind("employer.jobs.api", "employer", 40),  # GET /api/v1/jobs
    Kind("employer.recommendations.api", "employer", 30),  # GET /api/v1/recommendations
    Kind("employer.jobs.page", "employer", 20),  # GET /jobs (page)
    Kind("employer.post", "employer", 10, frozenset({201})),  # POST /api/v1/jobs
    Kind("public.rankings", "anonymous", 200),  # GET /public/rankings, no login
    Kind("public.login.page", "anonymous", 20),  # GET /login
)
KINDS = {k.name: k for k in MIX}


# --------------------------------------------------------------------------- data


def _env(url: str, data_key: str, var_dir: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "LAOWU_DATABASE_URL": url,
        "LAOWU_DATA_KEY": data_key,
        "LAOWU_VAR_DIR": str(var_dir),
        "LAOWU_MEDIA_DIR": str(var_dir / "media"),
        "LAOWU_RATE_LIMITS": "0",
    }
    env.setdefault("LAOWU_SECRET_KEY", "bench" * 8)
    return env


def _laowu(env: dict[str, str], *args: str) -> None:
    started = time.perf_counter()
    subprocess.run([laowu_command(), *args], env=env, check=True, stdout=subprocess.DEVNULL)
    print(f"  laowu {' '.join(args)}: {time.perf_counter() - started:.1f} s", flush=True)


async def _count(url: str, sql: str) -> int:
    engine = create_engine(url, pooled=False)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(text(sql))).scalar_one())
    finally:
        await engine.dispose()


async def _has_accounts(url: str) -> bool:
    """Whether the database holds user accounts (a new, empty one has no tables yet)."""
    engine = create_engine(url, pooled=False)
    try:
        async with engine.connect() as conn:
            if not await conn.run_sync(lambda sync: inspect(sync).has_table("user_account")):
                return False
            return bool((await conn.execute(text("SELECT count(*) FROM user_account"))).scalar())
    finally:
        await engine.dispose()


async def _analyze(url: str) -> None:
    engine = create_engine(url, pooled=False)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("ANALYZE"))
            await conn.commit()
    finally:
        await engine.dispose()


async def _staff_every_village(url: str) -> None:
    """A broker (without an account) in every village that has none, so generated
    workers can be dealt out over all of Chongqing."""
    engine = create_engine(url, pooled=False)
    try:
        async with unit_of_work(session_factory(engine)) as session:
            staffed = select(col(Broker.village_code))
            villages = (
                await session.execute(
                    select(col(Region.code)).where(
                        col(Region.level) == "village", col(Region.code).not_in(staffed)
                    )
                )
            ).scalars()
            rows = [
                {
                    "name": f"经纪人{v[-6:]}",
                    "village_code": v,
                    "status": "active",
                    "welfare_post_task_types": [],
                    "created_at": datetime(2026, 1, 1, tzinfo=UTC),
                }
                for v in villages
            ]
            if rows:
                await session.execute(insert(Broker), rows)
    finally:
        await engine.dispose()


async def add_employer_accounts(url: str, data_key: str, n: int) -> int:
    """Employer accounts for a database that has none (the Chongqing-scale generator
    makes organisations and jobs but no employer logins): one account each for up to
    ``n`` verified employers with published jobs, as an organisation admin would add
    them (``laowu users create`` and a membership)."""
    from marketplace.access import SYSTEM
    from marketplace.accounts import service as accounts
    from marketplace.accounts.models import UserCreate
    from marketplace.organizations.models import OrganizationMember

    engine = create_engine(url, pooled=False)
    cipher = DataCipher(decode_key(data_key))
    try:
        async with unit_of_work(session_factory(engine)) as session:
            orgs = (
                await session.execute(
                    text(
                        "SELECT o.id, o.region_code FROM organization o "
                        "WHERE o.kind = 'employer' AND o.status = 'verified' AND EXISTS "
                        "(SELECT 1 FROM job j WHERE j.organization_id = o.id "
                        "AND j.status = 'published') ORDER BY o.id LIMIT :n"
                    ),
                    {"n": n},
                )
            ).all()
            for org_id, region in orgs:
                user, _ = await accounts.create_user(
                    session=session,
                    actor=SYSTEM,
                    cipher=cipher,
                    data=UserCreate(
                        username=f"load_employer_{org_id}",
                        display_name=f"招聘专员{org_id}",
                        role="employer",
                        region_code=region[:6],
                        password=secrets.token_urlsafe(16),
                    ),
                )
                session.add(OrganizationMember(organization_id=org_id, user_id=user.id))
            return len(orgs)
    finally:
        await engine.dispose()


def _demo_rows(url: str, var_dir: Path) -> Others:
    """The demo's workers, organisations and jobs, counted once before the generator
    first runs and kept in ``var_dir``, so an interrupted generation resumes where it
    stopped (the generator counts past these rows)."""
    saved = var_dir / "demo-rows.json"
    if saved.exists():
        return Others(**json.loads(saved.read_text()))
    others = Others(
        workers=asyncio.run(_count(url, "SELECT count(*) FROM worker")),
        organizations=asyncio.run(_count(url, "SELECT count(*) FROM organization")),
        jobs=asyncio.run(_count(url, "SELECT count(*) FROM job")),
    )
    saved.write_text(json.dumps(dataclasses.asdict(others)))
    return others


def build_default(url: str, data_key: str, var_dir: Path, workers: int, jobs: int) -> None:
    """Migrate, regions, demo, generated workers and jobs, search index, candidates.
    Each step is idempotent; a database that has them all is left as it is."""
    from bench import scale_data

    env = _env(url, data_key, var_dir)
    try:
        have = asyncio.run(_count(url, "SELECT count(*) FROM worker"))
        users = asyncio.run(_count(url, "SELECT count(*) FROM user_account"))
    except Exception:  # not migrated yet
        have = users = 0
    if have >= workers and users:
        return
    _laowu(env, "db", "upgrade")
    _laowu(env, "regions", "load")
    _laowu(env, "demo")
    if asyncio.run(_count(url, "SELECT count(*) FROM worker")) < workers:
        asyncio.run(_staff_every_village(url))
        others = _demo_rows(url, var_dir)
        started = time.perf_counter()
        counts = asyncio.run(
            scale_data.generate(
                url,
                workers=workers,
                jobs=jobs,
                seed=9,
                # under the server's key: the demo's workers and these are read alike
                cipher=DataCipher(decode_key(data_key)),
                others=others,
            )
        )
        print(f"  generated {counts} in {time.perf_counter() - started:.1f} s", flush=True)
        _laowu(env, "index", "rebuild")
        _laowu(env, "matching", "rebuild")
        asyncio.run(_analyze(url))  # rows inserted in bulk: give the planner statistics


async def top_up_review_queue(url: str, districts: list[str], per_district: int) -> int:
    """Pending submissions (each with its submitted task and one evidence file) in each
    district, from that district's brokers, until ``per_district`` wait there."""
    engine = create_engine(url, pooled=False)
    added = 0
    rng = random.Random(17)
    now = datetime.now(UTC)
    try:
        async with unit_of_work(session_factory(engine)) as session:
            ttype = (
                await session.execute(
                    select(TaskType).where(col(TaskType.code) == "policy_outreach")
                )
            ).scalar_one()
            for district in districts:
                setting = await session.get(DistrictTaskSetting, district)
                # Ready for the district admin: township-checked where the district
                # asks townships to look first, else pending.
                state = "township_checked" if setting and setting.township_check else "pending"
                waiting = (
                    await session.execute(
                        select(func.count())
                        .select_from(TaskSubmission)
                        .where(
                            col(TaskSubmission.district_code) == district,
                            col(TaskSubmission.status) == state,
                        )
                    )
                ).scalar_one()
                missing = per_district - int(waiting)
                if missing <= 0:
                    continue
                brokers = (
                    await session.execute(
                        select(col(Broker.id), col(Broker.village_code))
                        .where(
                            col(Broker.village_code).startswith(district),
                            col(Broker.status) == "active",
                        )
                        .limit(300)
                    )
                ).all()
                if not brokers:
                    continue
                chosen = [rng.choice(brokers) for _ in range(missing)]
                deadline = now + timedelta(days=20)
                task_ids = (
                    await session.execute(
                        insert(ServiceTask).returning(
                            col(ServiceTask.id), sort_by_parameter_order=True
                        ),
                        [
                            {
                                "task_type_id": ttype.id,
                                "task_type_code": ttype.code,
                                "region_code": village,
                                "district_code": district,
                                "quantity": 2,
                                "deadline": deadline,
                                "period": deadline.strftime("%Y-%m"),
                                "instructions": "",
                                "status": "submitted" if state == "pending" else state,
                                "source": "published",
                                "assigned": False,
                                "broker_id": broker_id,
                                "claimed_at": now - timedelta(days=3),
                                "created_at": now - timedelta(days=3),
                            }
                            for broker_id, village in chosen
                        ],
                    )
                ).scalars()
                sub_ids = (
                    await session.execute(
                        insert(TaskSubmission).returning(
                            col(TaskSubmission.id), sort_by_parameter_order=True
                        ),
                        [
                            {
                                "task_id": task_id,
                                "broker_id": broker_id,
                                "district_code": district,
                                "region_code": village,
                                "quantity": 2,
                                "note": "入户宣传政策",
                                "worker_ids": [],
                                "upload_key": f"bench-load-{task_id}",
                                "status": state,
                                "submitted_at": now - timedelta(hours=rng.randint(1, 48)),
                            }
                            for task_id, (broker_id, village) in zip(
                                list(task_ids), chosen, strict=True
                            )
                        ],
                    )
                ).scalars()
                await session.execute(
                    insert(EvidenceFile),
                    [
                        {
                            "submission_id": sid,
                            "sha256": f"{sid:064x}",
                            "media_type": "image/jpeg",
                            "size": 100_000,
                            "filename": "现场.jpg",
                            "created_at": now,
                        }
                        for sid in sub_ids
                    ],
                )
                added += missing
    finally:
        await engine.dispose()
    return added


@dataclass
class Account:
    user_id: int
    username: str
    role: str
    region_code: str
    bearer: str = ""
    cookie: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Fixtures:
    brokers: list[Account]
    officers: list[Account]
    employers: list[Account]
    published_jobs: list[int]
    search_terms: list[str]


async def discover(url: str, max_accounts: int) -> Fixtures:
    """Valid logins and ids from whatever database this is (read-only)."""
    engine = create_engine(url, pooled=False)
    try:
        async with engine.connect() as conn:

            async def rows(sql: str, **params: Any) -> list[Any]:
                return list((await conn.execute(text(sql), params)).all())

            brokers = []
            for user_id, username, region, broker_id in await rows(
                "SELECT u.id, u.username, u.region_code, b.id FROM user_account u "
                "JOIN broker b ON b.user_id = u.id WHERE u.role = 'broker' AND u.is_active "
                "AND b.status = 'active' AND EXISTS (SELECT 1 FROM worker w "
                "WHERE w.broker_id = b.id AND w.deleted_at IS NULL) ORDER BY u.id LIMIT :n",
                n=max_accounts,
            ):
                account = Account(user_id, username, "broker", region)
                workers = await rows(
                    "SELECT id, consent_to_recommend FROM worker WHERE broker_id = :b "
                    "AND deleted_at IS NULL ORDER BY id LIMIT 400",
                    b=broker_id,
                )
                account.extra["workers"] = [w for w, _ in workers]
                account.extra["consenting"] = [w for w, c in workers if c]
                brokers.append(account)
            published = [
                r[0]
                for r in await rows(
                    "SELECT id FROM job WHERE status = 'published' ORDER BY id DESC LIMIT 300"
                )
            ]
            recommended = {
                (r[0], r[1])
                for r in await rows(
                    "SELECT r.job_id, r.worker_id FROM recommendation r JOIN job j "
                    "ON j.id = r.job_id WHERE j.status = 'published'"
                )
            }
            for account in brokers:
                pairs = [
                    (job, worker)
                    for worker in account.extra["consenting"][:60]
                    for job in published[:40]
                    if (job, worker) not in recommended
                ]
                random.Random(account.user_id).shuffle(pairs)
                account.extra["pairs"] = pairs
            officers = []
            for user_id, username, region in await rows(
                "SELECT id, username, region_code FROM user_account "
                "WHERE role = 'district_admin' AND is_active AND length(region_code) = 6 "
                "ORDER BY id LIMIT :n",
                n=max_accounts,
            ):
                account = Account(user_id, username, "district_admin", region)
                account.extra["pending"] = [
                    r[0]
                    for r in await rows(
                        # What the district admin may approve now: checked by the
                        # township where the district asks for that, else pending.
                        "SELECT s.task_id FROM task_submission s "
                        "JOIN service_task t ON t.id = s.task_id "
                        "LEFT JOIN task_district_setting ds ON ds.district_code = s.district_code "
                        "WHERE s.district_code = :d "
                        "AND t.status IN ('submitted', 'township_checked') "
                        "AND s.status = CASE WHEN ds.township_check THEN 'township_checked' "
                        "ELSE 'pending' END ORDER BY s.id LIMIT 5000",
                        d=region,
                    )
                ]
                officers.append(account)
            employers = []
            for user_id, username, region, org_id, org_region in await rows(
                "SELECT u.id, u.username, u.region_code, o.id, o.region_code "
                "FROM user_account u JOIN organization_member m ON m.user_id = u.id "
                "JOIN organization o ON o.id = m.organization_id "
                "WHERE u.role = 'employer' AND u.is_active AND o.status = 'verified' "
                "ORDER BY u.id LIMIT :n",
                n=max_accounts,
            ):
                account = Account(user_id, username, "employer", region)
                account.extra["organization_id"] = org_id
                account.extra["work_region"] = org_region
                account.extra["jobs"] = [
                    r[0]
                    for r in await rows(
                        "SELECT id FROM job WHERE organization_id = :o ORDER BY id DESC LIMIT 50",
                        o=org_id,
                    )
                ]
                employers.append(account)
            terms = [
                r[0]
                for r in await rows(
                    "SELECT title FROM job WHERE status = 'published' ORDER BY id LIMIT 200"
                )
            ]
    finally:
        await engine.dispose()
    short = sorted({t[:2] for t in terms if len(t) >= 2}) or ["普工"]
    return Fixtures(brokers, officers, employers, published, short)


async def open_sessions(url: str, accounts: list[Account]) -> None:
    """One bearer and one cookie session per account, as a login would write them."""
    engine = create_engine(url, pooled=False)
    now = datetime.now(UTC)
    try:
        async with unit_of_work(session_factory(engine)) as session:
            rows = []
            for account in accounts:
                for kind in ("bearer", "cookie"):
                    token = secrets.token_urlsafe(32)
                    setattr(account, kind, token)
                    rows.append(
                        {
                            "token_hash": hash_token(token),
                            "user_id": account.user_id,
                            "kind": kind,
                            "created_at": now,
                            "last_seen_at": now,
                            "expires_at": now + timedelta(hours=2),
                            "ip": "127.0.0.1",
                        }
                    )
            if rows:
                await session.execute(insert(AuthSession), rows)
    finally:
        await engine.dispose()


async def close_sessions(url: str, accounts: list[Account]) -> None:
    engine = create_engine(url, pooled=False)
    try:
        async with unit_of_work(session_factory(engine)) as session:
            hashes = [hash_token(t) for a in accounts for t in (a.bearer, a.cookie) if t]
            for start in range(0, len(hashes), 500):
                await session.execute(
                    update(AuthSession)
                    .where(col(AuthSession.token_hash).in_(hashes[start : start + 500]))
                    .values(ended_at=datetime.now(UTC))
                )
    finally:
        await engine.dispose()


# --------------------------------------------------------------------------- the plan

Request = tuple[str, str, dict[str, str], str | None]  # method, path, headers, body


def _api(account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.bearer}", "Accept": "application/json"}


def _page(account: Account) -> dict[str, str]:
    return {"Cookie": f"laowu_session={account.cookie}", "Accept": "text/html"}


JSON = {"Content-Type": "application/json"}


def _read(kind: str, rng: random.Random, fx: Fixtures) -> Request:
    """One read request of ``kind`` by a random account of its role."""
    if kind.startswith("broker."):
        b = rng.choice(fx.brokers)
        job = rng.choice(fx.published_jobs)
        term = quote(rng.choice(fx.search_terms))
        paths = {
            "broker.workers.api": (f"/api/v1/workers?limit=20&offset={rng.choice((0, 0, 20))}", 0),
            "broker.worker.api": (f"/api/v1/workers/{rng.choice(b.extra['workers'])}", 0),
            "broker.workers.page": ("/workers", 1),
            "broker.search.workers": (f"/api/v1/workers/search?q={term}&limit=20", 0),
            "broker.search.jobs": (f"/api/v1/jobs/search?q={term}&limit=20", 0),
            "broker.candidates.api": (f"/api/v1/jobs/{job}/candidates?limit=20", 0),
            "broker.candidates.page": (f"/matching/jobs/{job}", 1),
            "broker.tasks.api": ("/api/v1/tasks?mine=true&limit=20", 0),
            "broker.home.page": ("/", 1),
        }
        path, page = paths[kind]
        return ("GET", path, _page(b) if page else _api(b), None)
    if kind.startswith("officer."):
        o = rng.choice(fx.officers)
        if kind == "officer.queue.api":
            return ("GET", "/api/v1/review-queue?limit=50", _api(o), None)
        if kind == "officer.queue.page":
            return ("GET", "/tasks/review", _page(o), None)
        task = rng.choice(o.extra["pending"][:200] or [1])
        return ("GET", f"/api/v1/tasks/{task}", _api(o), None)
    if kind.startswith("employer."):
        e = rng.choice(fx.employers)
        if kind == "employer.jobs.api":
            return ("GET", "/api/v1/jobs?limit=20", _api(e), None)
        if kind == "employer.jobs.page":
            return ("GET", "/jobs", _page(e), None)
        job_filter = f"&job_id={rng.choice(e.extra['jobs'])}" if e.extra["jobs"] else ""
        return ("GET", f"/api/v1/recommendations?limit=20{job_filter}", _api(e), None)
    if kind == "public.rankings":
        return ("GET", "/public/rankings", {"Accept": "text/html"}, None)
    return ("GET", "/login", {"Accept": "text/html"}, None)


def _job_body(e: Account, n: int) -> str:
    starts = date.today() + timedelta(days=14)
    return json.dumps(
        {
            "organization_id": e.extra["organization_id"],
            "title": f"钢筋工（压测{n}）",
            "description": "工地长期用工，按月发薪",
            "headcount": 5,
            "wage_min_fen": 25000,
            "wage_max_fen": 35000,
            "wage_unit": "day",
            "work_region_code": e.extra["work_region"],
            "starts_on": starts.isoformat(),
        },
        ensure_ascii=False,
    )


# Writes that may happen once only draw from pools; when a thread's pool runs dry its
# slot sends this read instead.
POOLED = {"broker.recommend": "broker.candidates.api", "officer.approve": "officer.queue.api"}


def write_plan(fx: Fixtures, threads: int, seed: int, directory: Path, length: int = 2000) -> None:
    """plan-<thread>.tsv for each wrk thread (bench/load/mix.lua reads them): a
    sequence of ``length`` requests drawn by weight, and the thread's share of the
    one-time writes (recommendation pairs, submissions to approve)."""
    weights = [k.weight for k in MIX if _available(k, fx)]
    kinds = [k.name for k in MIX if _available(k, fx)]
    pools: dict[str, list[Request]] = {"broker.recommend": [], "officer.approve": []}
    for b in fx.brokers:
        for job, worker in b.extra["pairs"][:200]:
            body = json.dumps({"job_id": job, "worker_id": worker, "note": "压测推荐"})
            pools["broker.recommend"].append(
                ("POST", "/api/v1/recommendations", {**_api(b), **JSON}, body)
            )
    for o in fx.officers:
        for task in o.extra["pending"]:
            body = json.dumps({"decision": "approve", "comment": "材料齐全"})
            pools["officer.approve"].append(
                ("POST", f"/api/v1/tasks/{task}/review", {**_api(o), **JSON}, body)
            )
    rng = random.Random(seed)
    for pool in pools.values():
        rng.shuffle(pool)
    for t in range(threads):
        trng = random.Random(f"{seed}:{t}")
        lines = []
        for n, kind in enumerate(trng.choices(kinds, weights=weights, k=length)):
            if kind in POOLED:
                fallback = POOLED[kind]
                fm, fp, fh, _ = _read(fallback, trng, fx)
                lines.append(_tsv("S", kind, "GET", "/", {}, None, kind, fallback, fm, fp, fh))
            elif kind == "employer.post":
                e = trng.choice(fx.employers)
                body = _job_body(e, t * length + n)
                lines.append(_tsv("S", kind, "POST", "/api/v1/jobs", {**_api(e), **JSON}, body))
            else:
                method, path, headers, read_body = _read(kind, trng, fx)
                lines.append(_tsv("S", kind, method, path, headers, read_body))
        for name, pool in pools.items():
            lines.extend(_tsv("W", name, *r) for r in pool[t::threads])
        (directory / f"plan-{t + 1}.tsv").write_text("\n".join(lines) + "\n")


def _tsv(*fields: Any) -> str:
    out = []
    for f in fields:
        if f is None:
            f = ""
        elif isinstance(f, dict):
            f = "|".join(f"{k}: {v}" for k, v in f.items())
        assert "\t" not in f, f
        assert "\n" not in f, f
        out.append(f)
    return "\t".join(out)


def _available(kind: Kind, fx: Fixtures) -> bool:
    role = {"broker": fx.brokers, "district_admin": fx.officers, "employer": fx.employers}
    return kind.role == "anonymous" or bool(role[kind.role])


# --------------------------------------------------------------------------- a run


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    found = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            kids = (task / "children").read_text().split()
            for kid in kids:
                found.append(int(kid))
                found.extend(_children(int(kid)))
    except OSError:
        pass
    return found


def _status(pid: int, key: str) -> int:
    """A /proc/PID/status figure in KiB (VmRSS, VmHWM), 0 if gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _pg_backends(database: str | None) -> list[int]:
    """PostgreSQL server processes serving ``database`` on this machine (their CPU is
    part of each request's cost on PostgreSQL)."""
    if not database:
        return []
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if cmd.startswith(b"postgres: ") and f" {database} ".encode() in cmd:
            found.append(int(entry.name))
    return found


def _get(port: int, path: str, headers: dict[str, str] | None = None) -> int:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    outbox: subprocess.Popen[bytes] | None = None
    database: str | None = None  # PostgreSQL's database name, for its backends' CPU

    def workers(self) -> list[int]:
        """The processes that serve requests: uvicorn's children with --workers > 1
        (the supervisor only watches), the process itself with one."""
        kids = [p for p in _children(self.process.pid) if _is_python(p)]
        return kids or [self.process.pid]


def _is_python(pid: int) -> bool:
    """A uvicorn worker (a multiprocessing spawn child), not the resource tracker."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"spawn_main" in cmd


def start_server(env: dict[str, str], processes: int, tmp: Path) -> Server:
    """One process: the embedded default (the outbox drained inside the server).
    Several: the scaled layout of docs/operations.md, ``laowu serve --workers N``
    with LAOWU_OUTBOX_IN_PROCESS=0 and one ``laowu worker`` draining the outbox, so
    N processes do not all drain the same events."""
    port = free_port()
    log = tmp / f"serve-{processes}.log"
    outbox = None
    if processes > 1:
        env = {**env, "LAOWU_OUTBOX_IN_PROCESS": "0"}
        outbox = subprocess.Popen(
            [laowu_command(), "worker", "--interval", "0.5"],
            env=env,
            stdout=(tmp / "worker.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
    process = subprocess.Popen(
        [laowu_command(), "serve", "--port", str(port), "--workers", str(processes)],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = env["LAOWU_DATABASE_URL"]
    database = None if is_sqlite(url) else url.rsplit("/", 1)[1].split("?")[0]
    server = Server(process, port, log, outbox, database)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"laowu serve exited: {log.read_text()[-2000:]}")
        try:
            ready = _get(port, "/healthz") == 200
            if ready and (processes == 1 or len(server.workers()) >= processes):
                return server
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("laowu serve did not become ready in 120 s")


def stop_server(server: Server) -> None:
    for process in (server.process, server.outbox):
        if process is None:
            continue
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def warm_up(server: Server, fx: Fixtures) -> None:
    """Every kind once per server process (templates compiled, caches filled), and a
    check that each answers as the scenario expects before the clock starts."""
    rng = random.Random(1)
    for _ in range(max(2, len(server.workers())) * 2):
        for kind in MIX:
            if not _available(kind, fx) or kind.name in POOLED or kind.name == "employer.post":
                continue
            _, path, headers, _ = _read(kind.name, rng, fx)
            status = _get(server.port, path, headers)
            if status not in kind.expect and status // 100 != 3:
                raise RuntimeError(
                    f"warm-up: {kind.name} GET {path} answered {status}; "
                    f"the server's log ends:\n{server.log.read_text()[-4000:]}"
                )


def cost_per_kind(server: Server, fx: Fixtures, n: int) -> list[str]:
    """Server CPU per request of each read kind, ``n`` requests one at a time (the
    client waits for each answer, so nothing queues), and the mix's weighted mean."""
    rng = random.Random(2)
    pids = server.workers()
    lines, weighted, weights = [], 0.0, 0
    for kind in MIX:
        if not _available(kind, fx) or kind.name in POOLED or kind.name == "employer.post":
            continue
        before = sum(_cpu_seconds(p) for p in pids)
        started = time.perf_counter()
        for _ in range(n):
            _, path, headers, _ = _read(kind.name, rng, fx)
            _get(server.port, path, headers)
        wall = (time.perf_counter() - started) / n * 1000
        cpu = (sum(_cpu_seconds(p) for p in pids) - before) / n * 1000
        weighted += cpu * kind.weight
        weights += kind.weight
        lines.append(f"  {kind.name:32s} server CPU {cpu:6.1f} ms, wall {wall:6.1f} ms")
    lines.append(f"  weighted by the mix (reads only): {weighted / weights:.1f} ms CPU a request")
    return lines


@dataclass
class RunResult:
    processes: int
    seconds: float
    total: int
    samples: dict[str, list[float]]
    statuses: dict[str, Counter[int]]
    socket_errors: dict[str, int]
    peak_rss_mib: list[float]
    peak_anon_mib: list[float]
    server_cpu_s: float
    wrk_cpu_s: float
    load_before: float
    load_after: float
    connections: int
    server_5xx: int = 0
    outbox_rss_mib: float | None = None
    outbox_cpu_s: float = 0.0
    database_cpu_s: float | None = None


def run_wrk(
    server: Server,
    fx: Fixtures,
    tmp: Path,
    connections: int,
    duration: int,
    seed: int,
    profile: Path | None = None,
) -> RunResult:
    plan = tmp / "plan"
    plan.mkdir()
    write_plan(fx, connections, seed, plan)
    out = tmp / "samples.tsv"
    pids = server.workers()
    outbox = [server.outbox.pid] if server.outbox is not None else []
    cpu_before = sum(_cpu_seconds(p) for p in pids)
    outbox_before = sum(_cpu_seconds(p) for p in outbox)
    pg_before = {p: _cpu_seconds(p) for p in _pg_backends(server.database)}
    load_before = os.getloadavg()[0]
    spy = None
    if profile is not None:  # py-spy (the bench extra) samples the server processes
        spy = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("py-spy")),
                "record",
                "--format",
                "raw",
                "--rate",
                "50",
                "--subprocesses",
                "--pid",
                str(server.process.pid),
                "--duration",
                str(duration),
                "--output",
                str(profile),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    wrk = subprocess.Popen(
        [
            "wrk",
            f"-t{connections}",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout",
            "10s",
            "-s",
            str(MIX_LUA),
            f"http://127.0.0.1:{server.port}",
        ],
        env={**os.environ, "LAOWU_LOAD_PLAN": str(plan), "LAOWU_LOAD_OUT": str(out)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    peak: dict[int, int] = {}
    anon: dict[int, int] = {}  # peak RssAnon: the process's own memory, not mapped files
    while True:
        # wait4 rather than poll(): it hands back wrk's own CPU time when it ends.
        pid, status, usage = os.wait4(wrk.pid, os.WNOHANG)
        if pid:
            break
        for p in [*pids, *outbox]:
            peak[p] = max(peak.get(p, 0), _status(p, "VmHWM"))
            anon[p] = max(anon.get(p, 0), _status(p, "RssAnon"))
        time.sleep(0.25)
    wrk.returncode = os.waitstatus_to_exitcode(status)
    wrk_cpu = usage.ru_utime + usage.ru_stime
    if spy is not None:
        spy.wait()
    output = wrk.stdout.read().decode() if wrk.stdout else ""
    if wrk.returncode != 0:
        raise RuntimeError(f"wrk failed: {output}")
    for p in [*pids, *outbox]:
        peak[p] = max(peak.get(p, 0), _status(p, "VmHWM"))
    server_cpu = sum(_cpu_seconds(p) for p in pids) - cpu_before
    outbox_cpu = sum(_cpu_seconds(p) for p in outbox) - outbox_before
    pg_cpu = sum(_cpu_seconds(p) - pg_before.get(p, 0.0) for p in _pg_backends(server.database))
    samples: dict[str, list[float]] = defaultdict(list)
    statuses: dict[str, Counter[int]] = defaultdict(Counter)
    socket_errors: dict[str, int] = {}
    seconds = float(duration)
    total = 0
    for line in out.read_text().splitlines():
        parts = line.split("\t")
        if parts[0] == "#summary":
            seconds = int(parts[1]) / 1e6
            total = int(parts[2])
            socket_errors = dict(
                zip(
                    ("connect", "read", "write", "status", "timeout"),
                    map(int, parts[3:]),
                    strict=True,
                )
            )
            continue
        kind, code, micros = parts
        samples[kind].append(int(micros) / 1000)
        statuses[kind][int(code)] += 1
    return RunResult(
        processes=len(pids),
        seconds=seconds,
        total=total,
        samples=dict(samples),
        statuses=dict(statuses),
        socket_errors=socket_errors,
        peak_rss_mib=[peak[p] / 1024 for p in pids],
        peak_anon_mib=[anon.get(p, 0) / 1024 for p in pids],
        outbox_rss_mib=peak[outbox[0]] / 1024 if outbox else None,
        outbox_cpu_s=outbox_cpu,
        database_cpu_s=pg_cpu if server.database else None,
        server_cpu_s=server_cpu,
        wrk_cpu_s=wrk_cpu,
        load_before=load_before,
        load_after=os.getloadavg()[0],
        connections=connections,
    )


def server_errors(log: str) -> int:
    """5xx access lines in the server's log, less those of requests whose client went
    away (wrk closes its connections when the time is up, mid-request)."""
    gone = set(DISCONNECTED.findall(log))
    return sum(1 for request_id in SERVER_ERROR.findall(log) if request_id not in gone)


def errors_of(result: RunResult) -> dict[str, Counter[int]]:
    """Statuses the scenario did not expect, per kind (3xx redirects are fine)."""
    bad: dict[str, Counter[int]] = {}
    for kind, counts in result.statuses.items():
        wrong = Counter(
            {s: n for s, n in counts.items() if s not in KINDS[kind].expect and not 300 <= s < 400}
        )
        if wrong:
            bad[kind] = wrong
    return bad


def summarise(result: RunResult, label: str) -> list[str]:
    every = [ms for values in result.samples.values() for ms in values]
    pct = percentiles(every) if len(every) > 1 else {"p50": 0, "p95": 0, "p99": 0, "max": 0}
    bad = errors_of(result)
    socket = sum(result.socket_errors.get(k, 0) for k in ("connect", "read", "write", "timeout"))
    errors = sum(sum(c.values()) for c in bad.values()) + socket
    late = max(
        0, result.server_5xx - sum(n for c in bad.values() for s, n in c.items() if s >= 500)
    )
    errors += late
    rate = len(every) / result.seconds
    writes = sum(
        len(result.samples.get(k, []))
        for k in ("broker.recommend", "officer.approve", "employer.post")
    )
    lines = [
        f"**{label}, {result.processes} server process(es)**: {rate:,.0f} requests/s "
        f"({len(every):,} in {result.seconds:.1f} s, {result.connections} connections, "
        f"{writes / max(1, len(every)):.1%} writes); latency p50 {pct['p50']:.1f} ms, "
        f"p95 {pct['p95']:.1f} ms, p99 {pct['p99']:.1f} ms, max {pct['max']:.0f} ms; "
        f"errors {errors}"
        + (
            f" ({_describe(bad)}; socket {result.socket_errors}; 5xx in the server log "
            f"{result.server_5xx})"
            if errors
            else ""
        )
        + "; peak RSS per server process "
        + ", ".join(f"{m:.0f}" for m in result.peak_rss_mib)
        + " MiB (of it anonymous memory at most "
        + ", ".join(f"{m:.0f}" for m in result.peak_anon_mib)
        + " MiB; the rest is mapped files: the search index, libraries)"
        + (
            f" (outbox worker {result.outbox_rss_mib:.0f} MiB, CPU {result.outbox_cpu_s:.1f} s)"
            if result.outbox_rss_mib is not None
            else " (outbox drained in the server process)"
        )
        + f"; CPU: server processes {result.server_cpu_s:.1f} s "
        f"({len(every) / max(result.server_cpu_s, 0.01):.0f} requests per server CPU-second)"
        + (
            f", PostgreSQL backends {result.database_cpu_s:.1f} s"
            if result.database_cpu_s is not None
            else ""
        )
        + f", wrk {result.wrk_cpu_s:.1f} s "
        f"(of {(os.cpu_count() or 1) * result.seconds:.0f} core-seconds); load average (1 min) "
        f"{result.load_before:.2f} before, {result.load_after:.2f} after",
    ]
    missed = [
        what
        for what, ok in (
            (f"≥ {TARGET_RATE:,} requests/s", rate >= TARGET_RATE),
            (f"p95 < {TARGET_P95_MS} ms", pct["p95"] < TARGET_P95_MS),
            ("0 errors", errors == 0),
            (
                f"< {TARGET_RSS_MIB} MB per server process",
                max(result.peak_rss_mib, default=0) < TARGET_RSS_MIB,
            ),
        )
        if not ok
    ]
    lines.append(
        "  targets: "
        + (
            "all met"
            if not missed
            else "missed "
            + ", ".join(missed)
            + " (why and what would move it: docs/operations.md, 'Load test')"
        )
    )
    per_kind = []
    for kind in MIX:
        values = result.samples.get(kind.name)
        if not values:
            continue
        p = (
            percentiles(values)
            if len(values) > 1
            else {"p50": values[0], "p95": values[0], "p99": values[0]}
        )
        per_kind.append(
            f"{kind.name} {len(values)} × p50 {p['p50']:.0f} / p95 {p['p95']:.0f} / "
            f"p99 {p['p99']:.0f} ms"
        )
    lines.append("  per kind: " + "; ".join(per_kind))
    return lines


def _describe(bad: dict[str, Counter[int]]) -> str:
    return ", ".join(
        f"{kind}: " + " ".join(f"{s}×{n}" for s, n in sorted(c.items())) for kind, c in bad.items()
    )


# --------------------------------------------------------------------------- main


def _default_db(data_dir: Path) -> tuple[str, str]:
    data_dir.mkdir(parents=True, exist_ok=True)
    key_file = data_dir / "data.key"
    if not key_file.exists():
        from marketplace.crypto import new_data_key

        key_file.write_text(new_data_key() + "\n")
    return f"sqlite+aiosqlite:///{data_dir / 'load.db'}", key_file.read_text().strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="an already prepared database (default: build one)")
    parser.add_argument("--data-key", default=os.environ.get("LAOWU_DATA_KEY"))
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--processes", default="1,2,4", help="server process counts to run")
    parser.add_argument("--duration", type=int, default=20, help="seconds per run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=100_000, help="generated workers")
    parser.add_argument("--jobs", type=int, default=5_000, help="generated jobs")
    parser.add_argument("--accounts", type=int, default=50, help="accounts per role")
    parser.add_argument("--no-record", action="store_true", help="print, do not append")
    parser.add_argument(
        "--cost",
        type=int,
        default=0,
        metavar="N",
        help="instead of the load: N requests of each read kind one at a time, and the "
        "server's CPU per request of each kind (what the mix's throughput is made of)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy the server during each run (collapsed stacks in --data-dir)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk (make bench does it)", file=sys.stderr)
        return 2
    if args.database_url:
        url = args.database_url
        # The key the database was made with; else this script's own (a database this
        # script filled, or an empty one it is about to fill).
        data_key = args.data_key or _default_db(args.data_dir)[1]
        var_dir = args.data_dir / ("var-" + ("sqlite" if is_sqlite(url) else "pg"))
        if not asyncio.run(_has_accounts(url)):
            build_default(url, data_key, var_dir, args.workers, args.jobs)
    else:
        url, data_key = _default_db(args.data_dir)
        var_dir = args.data_dir / "var-sqlite"
        build_default(url, data_key, var_dir, args.workers, args.jobs)
    env = _env(url, data_key, var_dir)
    label = "SQLite" if is_sqlite(url) else "PostgreSQL"
    counts = {
        t: asyncio.run(_count(url, f"SELECT count(*) FROM {t}"))  # noqa: S608 (fixed names)
        for t in ("worker", "job", "broker", "user_account", "recommendation")
    }
    lines = [
        f"database: {label}, {', '.join(f'{n:,} {t}' for t, n in counts.items())}",
        "mix per 1,000 requests: " + ", ".join(f"{k.name} {k.weight}" for k in MIX),
        "rate limits off for the run (LAOWU_RATE_LIMITS=0: one client address sends "
        "everything); the load generator (wrk) runs on the same 2 cores",
    ]
    failed = False
    for processes in [int(p) for p in args.processes.split(",")]:
        with tempfile.TemporaryDirectory(prefix="laowu-load-") as tmp_name:
            tmp = Path(tmp_name)
            fx0 = asyncio.run(discover(url, args.accounts))
            if not fx0.employers and asyncio.run(
                add_employer_accounts(url, data_key, args.accounts)
            ):
                fx0 = asyncio.run(discover(url, args.accounts))
            districts = sorted({o.region_code for o in fx0.officers})
            added = asyncio.run(top_up_review_queue(url, districts, PENDING_PER_DISTRICT))
            fx = asyncio.run(discover(url, args.accounts)) if added else fx0
            accounts = [*fx.brokers, *fx.officers, *fx.employers]
            if not fx.brokers or not fx.published_jobs:
                raise SystemExit("no broker accounts with workers, or no published jobs")
            asyncio.run(open_sessions(url, accounts))
            server = start_server(env, processes, tmp)
            try:
                warm_up(server, fx)
                if args.cost:
                    print("\n".join(cost_per_kind(server, fx, args.cost)), flush=True)
                    continue
                profile = (
                    args.data_dir / f"profile-{label}-{processes}.txt" if args.profile else None
                )
                result = run_wrk(
                    server, fx, tmp, args.connections, args.duration, processes, profile
                )
            finally:
                stop_server(server)
                asyncio.run(close_sessions(url, accounts))
            kept = args.data_dir / f"serve-{label}-{processes}.log"
            shutil.copy(server.log, kept)
            # A 5xx answered after wrk stopped waiting never reached its samples.
            result.server_5xx = server_errors(kept.read_text())
            if "database is locked" in kept.read_text():
                lines.append(
                    f"{processes} process(es): 'database is locked' in the server log {kept}"
                )
                failed = True
            summary = summarise(result, label)
            print("\n".join(summary), flush=True)
            lines.extend(summary)
            failed = failed or bool(errors_of(result)) or result.server_5xx > 0
    if args.no_record:
        print("\n".join(lines))
    else:
        record(f"HTTP load test, {label}", lines)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
