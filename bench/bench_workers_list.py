"""Worker register list with 1,000,000 workers in the database: a broker's filtered
list (the query behind `/workers` and `GET /api/v1/workers`) p95 < 100 ms, on SQLite
and on PostgreSQL; plus an officer's district view.

    python bench/bench_workers_list.py [--database-url URL] [--workers 1000000]

The data is generated once per database (kept under /work/benchdata-w3/ for SQLite;
a PostgreSQL database is filled if it holds fewer workers than asked) and reused:

- every village of the bundled region table gets a broker; a township's villages are
  dealt out in groups of 3–20 to one broker each (home village plus assigned ones),
  so a broker keeps a few hundred to ~2,000 workers;
- each worker is drawn to a village with a per-village weight (0.3–1.7), so villages
  differ in size; 1 % are deleted tombstones (personal data cleared);
- rows go straight into the tables, not through the service (which would take
  hours): sqlite3 ``executemany`` or PostgreSQL ``COPY``, with the ID number and
  phone AES-GCM encrypted under a fixed benchmark key and their keyed lookup hashes,
  exactly as ``records.apply`` stores them. No history rows (the list never reads
  them). The seed is fixed, so the same people come out every time.

Then, for a sample of brokers, each query is timed through the service function the
page and API call (``service.list_workers``, count and page) plus turning the page's
rows into responses (``records.to_public``, decrypting and masking), in a fresh
session per call: no filter, by village, by status, by name keyword, shallow and deep
pages; and a district admin's view of the largest district. Appends to
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import random
import sqlite3
import sys
import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select, text
from sqlmodel import col

from bench.common import (
    SCALE_DATA_KEY,
    add_scale_db_option,
    cpu_seconds,
    db_label,
    db_name,
    load_average,
    percentiles,
    record,
    scale_db_url,
)
from bench.scale_data import counts as scale_counts
from marketplace.access import Actor
from marketplace.crypto import DataCipher, decode_key
from marketplace.db import create_engine, session_factory, unit_of_work
from marketplace.regions import service as regions
from marketplace.regions.models import Region, RegionLevel
from marketplace.workers import records
from marketplace.workers import service as workers
from marketplace.workers.identity import check_char
from marketplace.workers.models import Worker
from web.migrate import upgrade

DATA_DIR = Path("/work/benchdata-w3")
BENCH_KEY = base64.urlsafe_b64encode(hashlib.sha256(b"laowu-bench-list").digest()).decode()
SEED = 20261127
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "建国华明伟芳娟秀英敏静丽强磊军洋勇艳杰娜涛超兰霞平刚桂春玉珍红梅林海波斌宇浩凯鹏辉晨欣琳雪婷文德志成福贵兴安云飞龙凤秋冬松柏全友"
SKILLS = [
    "电焊",
    "钢筋工",
    "木工",
    "瓦工",
    "保洁",
    "厨师",
    "叉车司机",
    "育婴员",
    "电工",
    "普工",
    "缝纫",
    "水电安装",
    "砌筑工",
    "挖掘机",
    "护工",
]
STATUSES = [
    ("employed_away", 40),
    ("employed_local", 25),
    ("seeking", 15),
    ("not_in_labour_force", 10),
    ("unknown", 10),
]
COLUMNS = [
    "broker_id",
    "name",
    "id_number_enc",
    "id_number_hash",
    "gender",
    "birth_date",
    "phone_enc",
    "phone_hash",
    "current_region_code",
    "current_location_text",
    "skills",
    "occupation_codes",
    "certificates",
    "wage_min_fen",
    "wage_max_fen",
    "wage_unit",
    "available_from",
    "mobility",
    "training_wishes",
    "note",
    "consent_to_recommend",
    "consent_at",
    "consent_method",
    "consent_recorded_by",
    "hukou_village_code",
    "employment_status",
    "last_verified_at",
    "created_at",
    "updated_at",
    "deleted_at",
    "deleted_reason",
    "merged_into_id",
]
BASE_TIME = datetime(2025, 1, 1, tzinfo=UTC)


# --- generating ------------------------------------------------------------------------


async def villages_and_brokers(url: str) -> tuple[list[str], dict[str, int], int]:
    """Migrate, load regions, create the brokers (once); village → broker id."""
    engine = create_engine(url)
    try:
        await upgrade(engine)
        async with unit_of_work(session_factory(engine)) as session:
            if (await session.execute(select(Region).limit(1))).first() is None:
                await regions.load(session=session, rows=regions.read_csv(regions.bundled_csv()))
            rows = (
                await session.execute(
                    select(col(Region.code), col(Region.parent_code))
                    .where(col(Region.level) == RegionLevel.village)
                    .order_by(col(Region.code))
                )
            ).all()
            villages = [code for code, _ in rows]
            existing = (
                await session.execute(
                    text(
                        "SELECT village_code, broker_id FROM broker_village WHERE broker_id IN "
                        "(SELECT id FROM broker WHERE name LIKE '基准经纪人%')"
                    )
                )
            ).all()
            if existing:
                count = (await session.execute(select(func.count()).select_from(Worker))).scalar()
                return villages, {v: b for v, b in existing}, int(count or 0)
            rng = random.Random(SEED)
            by_township: dict[str, list[str]] = defaultdict(list)
            for code, parent in rows:
                by_township[parent or code[:9]].append(code)
            groups: list[list[str]] = []
            for township in sorted(by_township):
                members = by_township[township][:]
                rng.shuffle(members)
                while members:
                    size = rng.randint(3, 20)
                    groups.append(members[:size])
                    members = members[size:]
            now = datetime.now(UTC)
            broker_of: dict[str, int] = {}
            for n, group in enumerate(groups, start=1):
                broker_id = (
                    await session.execute(
                        text(
                            "INSERT INTO broker (name, village_code, status, created_at, key_broker,"
                            " welfare_post, welfare_post_task_types) VALUES (:n, :v, 'active', :t,"
                            " false, false, '[]') RETURNING id"
                        ),
                        {"n": f"基准经纪人{n}", "v": group[0], "t": now},
                    )
                ).scalar_one()
                for village in group:
                    broker_of[village] = broker_id
            await session.execute(
                text(
                    "INSERT INTO broker_village (broker_id, village_code, created_at)"
                    " VALUES (:b, :v, :t)"
                ),
                [{"b": b, "v": v, "t": now} for v, b in broker_of.items()],
            )
            return villages, broker_of, 0
    finally:
        await engine.dispose()


def people(villages: list[str], broker_of: dict[str, int], total: int) -> Any:
    """The generated workers, one tuple of COLUMNS each (Python values)."""
    from matching.normalize import TaxonomyOccupationMapper

    rng = random.Random(SEED + 1)
    cipher = DataCipher(decode_key(BENCH_KEY))
    mapper = TaxonomyOccupationMapper()
    codes: dict[tuple[str, ...], list[str]] = {}
    weights = [rng.uniform(0.3, 1.7) for _ in villages]
    chosen = rng.choices(villages, weights=weights, k=total)
    used: set[str] = set()
    statuses, status_weights = zip(*STATUSES, strict=True)
    for i, village in enumerate(chosen):
        while True:
            born = date(1960, 1, 1) + timedelta(days=rng.randrange(45 * 365))
            first17 = f"{village[:6]}{born:%Y%m%d}{rng.randrange(1000):03d}"
            number = first17 + check_char(first17)
            if number not in used:
                used.add(number)
                break
        created = BASE_TIME + timedelta(seconds=i * 30)
        deleted = rng.random() < 0.01
        if deleted:
            yield (
                broker_of[village], None, None, None, None, None, None, None, None, None,
                "[]", "[]", "[]", None, None, None, None, None, "[]", None, False, None, None,
                None, village, rng.choices(statuses, status_weights)[0], None, created,
                created, created + timedelta(days=30), "person_request", None,
            )  # fmt: skip
            continue
        phone = f"1{rng.choice('3589')}{rng.randrange(10**9):09d}"
        skills = rng.sample(SKILLS, rng.randint(0, 3))
        key = tuple(skills)
        if key not in codes:
            codes[key] = mapper.codes_for(skills)
        low = rng.randrange(150, 300) * 1000
        consent = rng.random() < 0.7
        yield (
            broker_of[village],
            rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.randint(1, 2))),
            cipher.encrypt(number, context=records.CTX_ID),
            cipher.lookup_hash(number),
            "男" if int(number[16]) % 2 else "女",
            born,
            cipher.encrypt(phone, context=records.CTX_PHONE),
            cipher.lookup_hash(phone),
            None,
            rng.choice([None, "广东省东莞市", "浙江省宁波市", "四川省成都市"]),
            json.dumps(skills, ensure_ascii=False),
            json.dumps(codes[key]),
            "[]",
            low,
            low + 5000,
            "day",
            None,
            rng.choice(["local", "chongqing", "anywhere"]),
            "[]",
            None,
            consent,
            created if consent else None,
            "书面" if consent else None,
            None,
            village,
            rng.choices(statuses, status_weights)[0],
            created + timedelta(days=60) if rng.random() < 0.6 else None,
            created,
            created,
            None,
            None,
            None,
        )


def load_sqlite(path: Path, rows: Any) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous=OFF")

    def value(v: Any) -> Any:
        if isinstance(v, datetime):
            return v.astimezone(UTC).replace(tzinfo=None).isoformat(" ")
        if isinstance(v, date):
            return v.isoformat()
        return v

    columns, marks = ", ".join(COLUMNS), ", ".join("?" * len(COLUMNS))
    sql = f"INSERT INTO worker ({columns}) VALUES ({marks})"  # noqa: S608 (constant names)
    chunk: list[tuple[Any, ...]] = []
    for row in rows:
        chunk.append(tuple(value(v) for v in row))
        if len(chunk) >= 50_000:
            db.executemany(sql, chunk)
            db.commit()
            chunk = []
    db.executemany(sql, chunk)
    db.commit()
    db.execute("ANALYZE")
    db.close()


async def load_postgres(url: str, rows: Any) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        chunk: list[tuple[Any, ...]] = []
        for row in rows:
            chunk.append(row)
            if len(chunk) >= 50_000:
                await conn.copy_records_to_table("worker", records=chunk, columns=COLUMNS)
                chunk = []
        await conn.copy_records_to_table("worker", records=chunk, columns=COLUMNS)
        await conn.execute("VACUUM ANALYZE worker")
    finally:
        await conn.close()


# --- measuring -------------------------------------------------------------------------


async def actors(
    url: str, sample: int, *, scale: bool = False
) -> tuple[list[tuple[Actor, list[str]]], Actor, str]:
    """Broker actors (user accounts made for a sample of brokers), their villages, and a
    district admin of the district with the most workers. ``scale``: a Chongqing-scale
    database, whose brokers all have accounts already."""
    brokers_sql = (
        "SELECT id FROM broker WHERE user_id IS NOT NULL ORDER BY id"
        if scale
        else "SELECT id FROM broker WHERE name LIKE '基准经纪人%' ORDER BY id"
    )
    engine = create_engine(url)
    try:
        async with unit_of_work(session_factory(engine)) as session:
            ids = list((await session.execute(text(brokers_sql))).scalars())
            picked = random.Random(SEED + 2).sample(ids, sample)
            out: list[tuple[Actor, list[str]]] = []
            for broker_id in picked:
                row = (
                    await session.execute(
                        text("SELECT user_id, village_code FROM broker WHERE id = :b"),
                        {"b": broker_id},
                    )
                ).one()
                user_id = row[0]
                if user_id is None:
                    user_id = await _user(session, f"bench-broker-{broker_id}", "broker", row[1])
                    await session.execute(
                        text("UPDATE broker SET user_id = :u WHERE id = :b"),
                        {"u": user_id, "b": broker_id},
                    )
                villages = list(
                    (
                        await session.execute(
                            text("SELECT village_code FROM broker_village WHERE broker_id = :b"),
                            {"b": broker_id},
                        )
                    ).scalars()
                )
                out.append((Actor(user_id, f"b{broker_id}", "broker", row[1]), villages))
            district = (
                await session.execute(
                    text(
                        "SELECT substr(hukou_village_code, 1, 6) AS d FROM worker"
                        " GROUP BY d ORDER BY count(*) DESC LIMIT 1"
                    )
                )
            ).scalar_one()
            admin = await _user(session, f"bench-admin-{district}", "district_admin", district)
            return out, Actor(admin, "admin", "district_admin", district), district
    finally:
        await engine.dispose()


async def _user(session: Any, username: str, role: str, region: str) -> int:
    found = (
        await session.execute(
            text("SELECT id FROM user_account WHERE username = :u"), {"u": username}
        )
    ).scalar_one_or_none()
    if found is not None:
        return int(found)
    now = datetime.now(UTC)
    return int(
        (
            await session.execute(
                text(
                    "INSERT INTO user_account (username, display_name, role, region_code,"
                    " password_hash, is_active, failed_logins, totp_confirmed, created_at,"
                    " updated_at) VALUES (:u, :u, :r, :c, 'x', true, 0, false, :t, :t)"
                    " RETURNING id"
                ),
                {"u": username, "r": role, "c": region, "t": now},
            )
        ).scalar_one()
    )


async def measure(
    url: str, cases: list[tuple[str, Actor, dict[str, Any]]], rounds: int, key: str = BENCH_KEY
) -> dict[str, tuple[list[float], list[float], int]]:
    engine = create_engine(url)
    factory = session_factory(engine)
    cipher = DataCipher(decode_key(key))
    samples: dict[str, list[float]] = defaultdict(list)
    cpu_samples: dict[str, list[float]] = defaultdict(list)
    totals: dict[str, list[int]] = defaultdict(list)
    try:
        for _ in range(rounds):
            for name, actor, params in cases:
                started, cpu = time.perf_counter(), time.process_time()
                async with factory() as session:
                    rows, total = await workers.list_workers(
                        session=session, actor=actor, limit=50, **params
                    )
                    [records.to_public(w, cipher) for w in rows]
                samples[name].append((time.perf_counter() - started) * 1000)
                cpu_samples[name].append((time.process_time() - cpu) * 1000)
                totals[name].append(total)
    finally:
        await engine.dispose()
    return {
        k: (v, cpu_samples[k], round(sum(totals[k]) / len(totals[k]))) for k, v in samples.items()
    }


def cases_for(
    brokers: list[tuple[Actor, list[str]]], admin: Actor, district: str
) -> list[tuple[str, Actor, dict[str, Any]]]:
    cases: list[tuple[str, Actor, dict[str, Any]]] = []
    for actor, villages in brokers:
        cases += [
            ("broker: all, first page", actor, {"offset": 0}),
            ("broker: all, page 20 (offset 950)", actor, {"offset": 950}),
            ("broker: one village", actor, {"offset": 0, "village_code": villages[0]}),
            ("broker: status seeking", actor, {"offset": 0, "employment_status": "seeking"}),
            ("broker: name keyword 建", actor, {"offset": 0, "q": "建"}),
            (
                "broker: village + status + keyword",
                actor,
                {
                    "offset": 0,
                    "village_code": villages[-1],
                    "employment_status": "employed_away",
                    "q": "王",
                },
            ),
        ]
    township = None
    cases += [
        ("district admin: all, first page", admin, {"offset": 0}),
        ("district admin: all, offset 10,000", admin, {"offset": 10_000}),
        ("district admin: status seeking", admin, {"offset": 0, "employment_status": "seeking"}),
        ("district admin: name keyword 建国", admin, {"offset": 0, "q": "建国"}),
        ("district admin: one township", admin, {"offset": 0, "village_code": township or ""}),
    ]
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--workers", type=int, default=1_000_000)
    parser.add_argument("--brokers", type=int, default=20, help="brokers sampled")
    parser.add_argument("--rounds", type=int, default=5)
    add_scale_db_option(parser)
    args = parser.parse_args()
    if args.scale_db:
        measure_scale(args)
        return
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    sqlite_path = DATA_DIR / f"list-{args.workers}.db"
    url = args.database_url or f"sqlite+aiosqlite:///{sqlite_path}"
    backend = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    villages, broker_of, present = asyncio.run(villages_and_brokers(url))
    load_seconds = None
    if present < args.workers:
        if present:
            raise SystemExit(f"{present} workers already there; drop the database and rerun")
        started = time.perf_counter()
        rows = people(villages, broker_of, args.workers)
        if backend == "SQLite":
            load_sqlite(sqlite_path, rows)
        else:
            asyncio.run(load_postgres(url, rows))
        load_seconds = time.perf_counter() - started
    else:
        # Indexes added by a later migration: make sure the planner knows them.
        asyncio.run(_analyze(url))
    brokers, admin, district = asyncio.run(actors(url, args.brokers))
    cases = cases_for(brokers, admin, district)
    township = asyncio.run(_largest_township(url, district))
    cases = [
        (n, a, {**p, "village_code": township})
        if n == "district admin: one township"
        else (n, a, p)
        for n, a, p in cases
    ]
    asyncio.run(measure(url, cases, 1))  # one unrecorded round: caches warm, as in use
    results = asyncio.run(measure(url, cases, args.rounds))
    sizes = sorted(sum(1 for v in broker_of.values() if v == b) for b in set(broker_of.values()))
    worst_line, figures = summarise(results)
    lines = [
        f"database: {backend}",
        f"load average (1 min) when recorded: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
        f"{args.workers:,} workers, {len(set(broker_of.values())):,} brokers over "
        f"{len(villages):,} villages (3–20 villages each)"
        + (f"; generated and loaded in {load_seconds:.0f} s" if load_seconds else "; reused"),
        f"{args.brokers} brokers sampled, {args.rounds} rounds after one unrecorded warm-up "
        f"round; district admin of {district}; "
        "each figure is `service.list_workers` (count + page of 50) plus `to_public` of the "
        "page, in a fresh session. Wall time includes waiting for a core on a shared "
        "machine; the process's CPU time does not (on SQLite it includes the query, run "
        "in-process; on PostgreSQL only the client's share)",
    ]
    lines += figures
    lines.append(f"{worst_line}; villages per broker: {sizes[0]}–{sizes[-1]}")
    record(f"Worker register: list with {args.workers:,} workers", lines)


def summarise(
    results: dict[str, tuple[list[float], list[float], int]],
) -> tuple[str, list[str]]:
    lines = []
    worst = 0.0
    for name, (samples, cpu, total) in results.items():
        p, c = percentiles(samples), percentiles(cpu)
        worst = max(worst, p["p95"])
        lines.append(
            f"{name} (~{total:,} match): p50 {p['p50']:.1f} ms, p95 {p['p95']:.1f} ms, "
            f"max {p['max']:.1f} ms; CPU of this process p50 {c['p50']:.1f} ms, "
            f"p95 {c['p95']:.1f} ms"
        )
    return f"worst p95: {worst:.1f} ms (target < 100 ms)", lines


def measure_scale(args: argparse.Namespace) -> None:
    """The same cases against a Chongqing-scale database (bench/bench_scale_data.py):
    3,000,000 workers, one broker per village (some villages two)."""
    url = scale_db_url(args.scale_db)
    assert url is not None
    backend = db_name(url)
    asyncio.run(_analyze(url))
    brokers, admin, district = asyncio.run(actors(url, args.brokers, scale=True))
    cases = cases_for(brokers, admin, district)
    township = asyncio.run(_largest_township(url, district))
    cases = [
        (n, a, {**p, "village_code": township})
        if n == "district admin: one township"
        else (n, a, p)
        for n, a, p in cases
    ]
    cpu0 = cpu_seconds()
    asyncio.run(measure(url, cases, 1, SCALE_DATA_KEY))  # warm-up round, unrecorded
    results = asyncio.run(measure(url, cases, args.rounds, SCALE_DATA_KEY))
    counts = asyncio.run(scale_counts(url))
    worst_line, figures = summarise(results)
    lines = [
        f"database: {backend}, Chongqing-scale data set {db_label(url)} (bench/bench_scale_data.py)",
        f"load average when recorded: {load_average()}; CPU time of this process while "
        f"measuring {cpu_seconds() - cpu0:.1f} s",
        f"{counts.workers:,} workers, {counts.brokers:,} brokers (one home village each)",
        f"{args.brokers} brokers sampled, {args.rounds} rounds after one unrecorded warm-up "
        f"round; district admin of {district} (the district with the most workers); each "
        "figure is `service.list_workers` (count + page of 50) plus `to_public` of the page, "
        "in a fresh session",
        *figures,
        worst_line,
    ]
    record(
        f"Worker register: list at Chongqing scale ({counts.workers:,} workers), {backend}", lines
    )


async def _analyze(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("ANALYZE"))
    finally:
        await engine.dispose()


async def _largest_township(url: str, district: str) -> str:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return str(
                (
                    await conn.execute(
                        text(
                            "SELECT substr(hukou_village_code, 1, 9) AS t FROM worker"
                            " WHERE hukou_village_code LIKE :d GROUP BY t ORDER BY count(*) DESC"
                            " LIMIT 1"
                        ),
                        {"d": district + "%"},
                    )
                ).scalar_one()
            )
    finally:
        await engine.dispose()


if __name__ == "__main__":
    main()
