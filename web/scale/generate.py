"""The Chongqing-scale data set: deterministic, streamed, straight into the tables.

    report = await generate(url, SCALES["chongqing"], cipher)

Parts, in order, each timed (wall and CPU) with the process's peak memory after it:

- ``prepare``: migrate, load the region tree (11,270 villages);
- ``accounts``: the city's and each district's administrator, finance and auditor
  accounts (through ``accounts.create_user``), and the brokers: one per village first,
  the rest as second brokers of villages spread evenly, each with a ``broker`` login
  (``b00001``…, the demo password; one argon2 hash shared by all, computed once);
- ``workers``: the register, spread over the brokers' villages, resident ID numbers
  (valid GB 11643, unique by construction) and mobile numbers encrypted with the data
  key beside their lookup hashes, like a registration writes them;
- ``organizations`` and ``jobs``;
- ``placements``: one worker in ten recommended to a published job, at every stage,
  the onboarded ones with their placement;
- ``tasks``: public-service tasks over twelve months with their submissions and their
  money (``web/scale/money.py``);
- ``analyze``: planner statistics (``ANALYZE``) for what was written.

The search index is not built here: ``laowu index rebuild`` does it from the database.

Same seed, same rows (ciphertexts differ: every encryption takes a fresh nonce).
Rows go in blocks of ``BLOCK`` per transaction; memory stays bounded by a block (and
by one month of subsidies). A part whose table already holds its count is skipped, and
workers resume from the last whole block, so an interrupted run can be run again.
"""

from __future__ import annotations

import random
import resource
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyotp
from sqlalchemy import Table, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import col

from marketplace.access import TOTP_ROLES, Role
from marketplace.accounts import service as accounts
from marketplace.accounts.models import User
from marketplace.brokers.models import Broker, BrokerVillage
from marketplace.crypto import DataCipher
from marketplace.db import create_engine, session_factory, unit_of_work
from marketplace.demo import DEMO_PASSWORD
from marketplace.jobs.models import Job
from marketplace.organizations.credit_code import check_char as credit_check
from marketplace.organizations.models import Organization
from marketplace.placements.models import Placement, Recommendation
from marketplace.placements.service import ATTRIBUTION
from marketplace.regions import service as regions
from marketplace.regions.models import Region
from marketplace.workers.identity import check_char
from marketplace.workers.models import Worker
from marketplace.workers.records import CTX_ID, CTX_PHONE
from matching.taxonomy import load_taxonomy
from web.scale.plan import Scale
from web.scale.sink import Sink, begin, fix_sequences

BLOCK = 10_000
EPOCH = datetime(2025, 12, 1, tzinfo=UTC)

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "建国明华强伟芳丽军平刚杰勇敏静磊洋艳娟涛超秀英霞红玉兰桂珍凤春林海波成德福贵生荣才山林云飞鹏志文东兴发"
STATUSES = ["seeking"] * 4 + ["employed_local"] * 2 + ["employed_away"] * 3 + ["unknown"]
PLACES = ["广东省东莞市", "浙江省宁波市", "江苏省苏州市", "重庆市主城", "福建省泉州市", "本地", "新疆", "上海市"]  # fmt: skip
JOB_SUFFIX = ["", "（长期）", "（包吃住）", "学徒", "（日结）", "师傅", "（急招）"]
JOB_TEXT = ["工地长期用工", "按月发薪，不拖欠", "提供住宿", "有经验者优先", "年龄 18–55 岁", "缴纳社保", "工作稳定"]  # fmt: skip
ORG_TRADES = ("建工", "机电", "物流", "食品", "家政", "安保", "电子", "制衣", "汽配", "餐饮")
# Resident ID slots: (birth day, sequence) pairs, walked by a multiplier coprime to
# their number, so every worker's number differs without remembering any.
ID_DAYS = 16_000  # birth dates from 1960-01-01, so everyone is 22–66 in 2026
ID_SLOTS = ID_DAYS * 1000
ID_STEP = 7_368_787
BIRTH_EPOCH = date(1960, 1, 1)


@dataclass
class Part:
    name: str
    rows: int
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    skipped: bool = False


@dataclass
class Report:
    url: str
    scale: Scale
    parts: list[Part] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(p.seconds for p in self.parts)

    @property
    def peak_rss_mb(self) -> float:
        return max((p.peak_rss_mb for p in self.parts), default=peak_rss_mb())


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


Progress = Callable[[str], None]


async def _timed(
    report: Report, name: str, progress: Progress, work: Callable[[], Awaitable[int | None]]
) -> None:
    started, cpu = time.perf_counter(), _cpu()
    rows = await work()
    part = Part(
        name=name,
        rows=rows or 0,
        seconds=time.perf_counter() - started,
        cpu_seconds=_cpu() - cpu,
        peak_rss_mb=peak_rss_mb(),
        skipped=rows is None,
    )
    report.parts.append(part)
    state = "已存在，跳过" if part.skipped else f"{part.rows:,} 行"
    progress(
        f"{name}: {state}，用时 {part.seconds:.1f} 秒（CPU {part.cpu_seconds:.1f} 秒），"
        f"内存峰值 {part.peak_rss_mb:.0f} MB"
    )


async def count(conn: AsyncConnection, table: Any) -> int:
    return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


def resident_id(district: str, i: int) -> tuple[str, date, str]:
    """The ``i``-th worker's resident ID number (unique over ``i`` < 16,000,000),
    birth date and gender."""
    slot = (i * ID_STEP) % ID_SLOTS
    born = BIRTH_EPOCH + timedelta(days=slot // 1000)
    first17 = f"{district}{born:%Y%m%d}{slot % 1000:03d}"
    gender = "male" if (slot % 1000) % 2 == 1 else "female"
    return first17 + check_char(first17), born, gender


def mobile(i: int) -> str:
    return f"1{3 + i % 7}{(i * 104_729) % 1_000_000_000:09d}"


def credit_code(district: str, i: int) -> str:
    first17 = f"91{district}{i:09d}"
    return first17 + credit_check(first17)


@dataclass
class World:
    """What later parts need from earlier ones (small: per village, not per row)."""

    villages: list[str]
    districts: list[str]
    townships: list[str]
    brokers_of: dict[str, list[int]]  # village -> broker ids (first: the keeper)
    broker_villages: list[str]  # villages that have a broker, in code order
    finance_user: int | None = None


async def _regions(conn: AsyncConnection) -> tuple[list[str], list[str], list[str]]:
    async def level(name: str) -> list[str]:
        rows = await conn.execute(
            select(col(Region.code)).where(col(Region.level) == name).order_by(col(Region.code))
        )
        return [str(c) for c in rows.scalars()]

    return await level("village"), await level("district"), await level("township")


async def prepare(url: str) -> None:
    """Migrate and load the region tree (idempotent)."""
    from web.migrate import upgrade

    engine = create_engine(url)
    try:
        await upgrade(engine)
        async with unit_of_work(session_factory(engine)) as session:
            await regions.load(session=session, rows=regions.read_csv(regions.bundled_csv()))
    finally:
        await engine.dispose()


# --- accounts and brokers -------------------------------------------------------------

OFFICE_ROLES = (
    ("admin", Role.district_admin, "区县管理员"),
    ("finance", Role.finance, "财务"),
    ("auditor", Role.auditor, "审计"),
)


async def _offices(engine: AsyncEngine, cipher: DataCipher, districts: list[str]) -> int:
    """The city's and each district's office accounts, as ``accounts.create_user``
    makes them for the system (TOTP set up for the roles that need it), but with one
    shared password hash (argon2 costs ~0.15 s an account)."""
    plan = [
        ("city_admin", Role.city_admin, "50", "市局管理员"),
        ("city_finance", Role.finance, "50", "市局财务"),
        ("city_auditor", Role.auditor, "50", "市局审计"),
    ]
    plan += [
        (f"d{d}_{key}", role, d, f"{d}{label}")
        for d in districts
        for key, role, label in OFFICE_ROLES
    ]
    async with engine.connect() as conn:
        taken = set((await conn.execute(select(col(User.username)))).scalars())
        password_hash = accounts.hash_password(DEMO_PASSWORD)
        rows = []
        for username, role, region, display in plan:
            if username in taken:
                continue
            totp = role in TOTP_ROLES
            rows.append(
                {
                    "username": username,
                    "display_name": display,
                    "role": role.value,
                    "region_code": region,
                    "password_hash": password_hash,
                    "is_active": True,
                    "failed_logins": 0,
                    "totp_secret_enc": cipher.encrypt(pyotp.random_base32(), context="totp")
                    if totp
                    else None,
                    "totp_confirmed": totp,
                    "created_at": EPOCH - timedelta(days=800),
                    "updated_at": EPOCH - timedelta(days=800),
                }
            )
        await begin(conn)
        await Sink(conn).write(User.__table__, rows)  # type: ignore[attr-defined]
        await conn.commit()
    return len(rows)


def broker_village_plan(villages: list[str], n: int) -> list[str]:
    """The home village of each of ``n`` brokers: every village once (spread evenly
    when there are fewer brokers than villages), then second brokers spread evenly."""
    nv = len(villages)
    first = min(n, nv)
    plan = [villages[i * nv // first] for i in range(first)]
    extra = n - first
    plan += [villages[i * nv // extra] for i in range(extra)] if extra else []
    return plan


async def _brokers(engine: AsyncEngine, scale: Scale, villages: list[str]) -> int | None:
    async with engine.connect() as conn:
        if await count(conn, Broker) >= scale.brokers:
            return None
        if await count(conn, Broker) > 0:
            raise RuntimeError("broker 表已有部分数据：请在新数据库上生成")
        password_hash = accounts.hash_password(DEMO_PASSWORD)
        plan = broker_village_plan(villages, scale.brokers)
        rng = random.Random(f"{scale.seed}:brokers")
        sink = Sink(conn)
        user_base = await _max_id(conn, User.__table__)  # type: ignore[attr-defined]
        broker_base = await _max_id(conn, Broker.__table__)  # type: ignore[attr-defined]
        users: list[dict[str, Any]] = []
        brokers: list[dict[str, Any]] = []
        links: list[dict[str, Any]] = []
        await begin(conn)
        for i, village in enumerate(plan, start=1):
            name = rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice((1, 2))))
            uid, bid = user_base + i, broker_base + i
            certified = EPOCH - timedelta(days=rng.randrange(30, 700))
            users.append(
                {
                    "id": uid,
                    "username": f"b{i:05d}",
                    "display_name": f"经纪人{name}",
                    "role": Role.broker.value,
                    "region_code": village,
                    "password_hash": password_hash,
                    "is_active": True,
                    "failed_logins": 0,
                    "totp_confirmed": False,
                    "created_at": certified,
                    "updated_at": certified,
                }
            )
            brokers.append(
                {
                    "id": bid,
                    "user_id": uid,
                    "name": name,
                    "village_code": village,
                    "status": "active",
                    "created_at": certified,
                    "broker_no": f"CQ{village[:6]}{i:06d}",
                    "certified_at": certified,
                    "key_broker": rng.random() < 0.05,
                    "welfare_post": False,
                    "welfare_post_task_types": [],
                }
            )
            links.append({"broker_id": bid, "village_code": village, "created_at": certified})
            if len(users) >= BLOCK:
                await _write_brokers(sink, users, brokers, links)
        await _write_brokers(sink, users, brokers, links)
        await fix_sequences(
            conn,
            [User.__table__, Broker.__table__, BrokerVillage.__table__],  # type: ignore[attr-defined]
        )
        await conn.commit()
        return len(plan)


async def _write_brokers(
    sink: Sink,
    users: list[dict[str, Any]],
    brokers: list[dict[str, Any]],
    links: list[dict[str, Any]],
) -> None:
    await sink.write(User.__table__, users)  # type: ignore[attr-defined]
    await sink.write(Broker.__table__, brokers)  # type: ignore[attr-defined]
    await sink.write(BrokerVillage.__table__, links)  # type: ignore[attr-defined]
    users.clear()
    brokers.clear()
    links.clear()


async def _max_id(conn: AsyncConnection, table: Table) -> int:
    return int((await conn.execute(text(f'SELECT MAX(id) FROM "{table.name}"'))).scalar() or 0)


async def load_world(engine: AsyncEngine) -> World:
    async with engine.connect() as conn:
        villages, districts, townships = await _regions(conn)
        brokers_of: dict[str, list[int]] = {}
        rows = await conn.execute(
            select(col(Broker.id), col(Broker.village_code))
            .where(col(Broker.status) == "active")
            .order_by(col(Broker.id))
        )
        for bid, village in rows.all():
            brokers_of.setdefault(str(village), []).append(int(bid or 0))
        finance = (
            await conn.execute(select(col(User.id)).where(col(User.username) == "city_finance"))
        ).scalar()
    return World(
        villages=villages,
        districts=districts,
        townships=townships,
        brokers_of=brokers_of,
        broker_villages=sorted(brokers_of),
        finance_user=int(finance) if finance is not None else None,
    )


# --- workers ----------------------------------------------------------------------------


def worker_rows(scale: Scale, world: World, cipher: DataCipher, start_block: int) -> Any:
    """Blocks of worker rows from ``start_block``; each block has its own random
    stream, so a block is the same whether or not earlier ones were generated now."""
    terms = [(term, occ.key) for occ in load_taxonomy() for term in occ.terms]
    villages = world.broker_villages
    blocks = (scale.workers + BLOCK - 1) // BLOCK
    for block in range(start_block, blocks):
        rng = random.Random(f"{scale.seed}:workers:{block}")
        rows: list[dict[str, Any]] = []
        for i in range(block * BLOCK, min(scale.workers, (block + 1) * BLOCK)):
            village = villages[rng.randrange(len(villages))]
            keepers = world.brokers_of[village]
            number, born, gender = resident_id(village[:6], i)
            phone = mobile(i) if rng.random() < 0.9 else None
            picked = [terms[rng.randrange(len(terms))] for _ in range(rng.choice((1, 1, 2, 2, 3)))]
            stamp = EPOCH - timedelta(days=400) + timedelta(seconds=i * 11 % 31_536_000)
            wage = rng.randrange(150, 450) * 100
            consent = rng.random() < 0.8
            rows.append(
                {
                    "broker_id": keepers[i % len(keepers)],
                    "name": rng.choice(SURNAMES)
                    + "".join(rng.choices(GIVEN, k=rng.choice((1, 2)))),
                    "id_number_enc": cipher.encrypt(number, context=CTX_ID),
                    "id_number_hash": cipher.lookup_hash(number),
                    "gender": gender,
                    "birth_date": born,
                    "phone_enc": cipher.encrypt(phone, context=CTX_PHONE) if phone else None,
                    "phone_hash": cipher.lookup_hash(phone) if phone else None,
                    "current_location_text": rng.choice(PLACES),
                    "skills": [t for t, _ in picked],
                    "occupation_codes": list(dict.fromkeys(k for _, k in picked)),
                    "certificates": [],
                    "wage_min_fen": wage,
                    "wage_max_fen": wage + 10000,
                    "wage_unit": "day",
                    "available_from": None
                    if rng.random() < 0.5
                    else date(2026, 1, 1) + timedelta(days=rng.randrange(400)),
                    "mobility": rng.choice(("local", "chongqing", "anywhere")),
                    "training_wishes": [],
                    "consent_to_recommend": consent,
                    "consent_at": stamp if consent else None,
                    "consent_method": "书面" if consent else None,
                    "hukou_village_code": village,
                    "employment_status": rng.choice(STATUSES),
                    "last_verified_at": stamp + timedelta(days=rng.randrange(300)),
                    "created_at": stamp,
                    "updated_at": stamp,
                }
            )
        yield rows


@dataclass(frozen=True)
class Others:
    """Rows that were in the database before the generator began and are not its own
    (a benchmark that loads ``laowu demo`` first): the generator counts past them when
    it decides what is still to be written."""

    workers: int = 0
    organizations: int = 0
    jobs: int = 0


async def _unregistered(conn: AsyncConnection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    taken: set[str] = set()
    hashes = [r["id_number_hash"] for r in rows]
    for start in range(0, len(hashes), 5_000):
        chunk = hashes[start : start + 5_000]
        found = await conn.execute(
            select(col(Worker.id_number_hash)).where(col(Worker.id_number_hash).in_(chunk))
        )
        taken.update(h for h in found.scalars() if h is not None)
    return [r for r in rows if r["id_number_hash"] not in taken]


async def _workers(
    engine: AsyncEngine, scale: Scale, world: World, cipher: DataCipher, others: Others
) -> int | None:
    async with engine.connect() as conn:
        have = await count(conn, Worker) - others.workers
        if have >= scale.workers:
            return None
        if have % BLOCK and have != 0 and not others.workers:
            raise RuntimeError(f"worker 表已有 {have} 行（不是整块）：请在新数据库上生成")
        sink = Sink(conn)
        written = 0
        for rows in worker_rows(scale, world, cipher, have // BLOCK):
            await begin(conn)
            if others.workers:
                # Beside other rows a generated ID number may already be registered
                # (and a block may be written again on resume): skip those, as the
                # demo does.
                rows = await _unregistered(conn, rows)
            await sink.write(Worker.__table__, rows)  # type: ignore[attr-defined]
            await conn.commit()
            written += len(rows)
        return written


# --- organisations and jobs -------------------------------------------------------------


async def _organizations(
    engine: AsyncEngine, scale: Scale, world: World, others: Others
) -> int | None:
    async with engine.connect() as conn:
        if await count(conn, Organization) - others.organizations >= scale.organizations:
            return None
        rng = random.Random(f"{scale.seed}:organizations")
        rows = []
        for i in range(scale.organizations):
            district = world.districts[i % len(world.districts)]
            agency = i % 10 == 9
            stamp = EPOCH - timedelta(days=rng.randrange(30, 600))
            rows.append(
                {
                    "kind": "agency" if agency else "employer",
                    "name": f"重庆{rng.choice(ORG_TRADES)}{'人力资源' if agency else ''}有限公司{i + 1}",
                    "credit_code": credit_code(district, i + 1),
                    "contact_name": rng.choice(SURNAMES) + "经理",
                    "contact_phone": f"023-{6000_0000 + i:08d}",
                    "address": f"重庆市{district}",
                    "licence_no": f"渝人服证字{i + 1:08d}号" if agency else None,
                    "region_code": district,
                    "status": "verified" if rng.random() < 0.9 else "pending",
                    "verified_at": stamp if rng.random() < 0.9 else None,
                    "created_at": stamp,
                    "updated_at": stamp,
                }
            )
        sink = Sink(conn)
        await begin(conn)
        for start in range(0, len(rows), BLOCK):
            await sink.write(Organization.__table__, rows[start : start + BLOCK])  # type: ignore[attr-defined]
        await conn.commit()
        return len(rows)


def job_rows(scale: Scale, world: World, organizations: list[int]) -> Any:
    rng = random.Random(f"{scale.seed}:jobs")
    occupations = list(load_taxonomy())
    places = world.districts + world.townships
    for i in range(scale.jobs):
        occ = occupations[rng.randrange(len(occupations))]
        region = places[rng.randrange(len(places))]
        unit = rng.choice(("day", "day", "month", "hour"))
        low = {
            "day": rng.randrange(150, 400) * 100,
            "month": rng.randrange(2500, 9000) * 100,
            "hour": rng.randrange(20, 45) * 100,
        }[unit]
        stamp = EPOCH - timedelta(days=30) + timedelta(seconds=i * 311 % 31_536_000)
        status = (
            "published"
            if rng.random() < 0.7
            else rng.choice(("draft", "closed", "filled", "expired", "pending_review"))
        )
        title = rng.choice(occ.terms)[:20] + rng.choice(JOB_SUFFIX)
        yield {
            "organization_id": organizations[rng.randrange(len(organizations))],
            "title": title[:60],
            "description": "，".join(rng.sample(JOB_TEXT, 3)),
            "occupation_code": occ.key,
            "headcount": rng.randrange(1, 50),
            "wage_min_fen": low,
            "wage_max_fen": low + low // 4,
            "wage_unit": unit,
            "work_region_code": region,
            "work_location_text": None,
            "starts_on": date(2026, 1, 1) + timedelta(days=rng.randrange(500)),
            "certificates_required": [],
            "board": rng.random() < 0.5,
            "lodging": rng.random() < 0.5,
            "social_insurance": rng.random() < 0.5,
            "status": status,
            "flags": [],
            "flagged": False,
            "review_district_code": region[:6],
            "created_at": stamp,
            "updated_at": stamp,
        }


async def _jobs(engine: AsyncEngine, scale: Scale, world: World, others: Others) -> int | None:
    async with engine.connect() as conn:
        have = await count(conn, Job) - others.jobs
        if have >= scale.jobs:
            return None
        if have > 0:
            raise RuntimeError("job 表已有部分数据：请在新数据库上生成")
        orgs = [
            int(o or 0)
            for o in (
                await conn.execute(
                    select(col(Organization.id))
                    .where(col(Organization.kind) == "employer")
                    .order_by(col(Organization.id))
                )
            ).scalars()
        ]
        sink = Sink(conn)
        buf: list[dict[str, Any]] = []
        await begin(conn)
        for row in job_rows(scale, world, orgs):
            buf.append(row)
            if len(buf) >= BLOCK:
                await sink.write(Job.__table__, buf)  # type: ignore[attr-defined]
                buf = []
        await sink.write(Job.__table__, buf)  # type: ignore[attr-defined]
        await conn.commit()
        return scale.jobs


async def _analyze(engine: AsyncEngine) -> int:
    """Planner statistics for the tables just filled (queries pick their indexes); on
    PostgreSQL ``VACUUM ANALYZE``, which also sets the visibility map that index-only
    scans need (rows written by COPY have none until a vacuum: a district's worker
    count read 160,000 heap rows instead of an index)."""
    async with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await auto.execute(text("VACUUM ANALYZE"))
            return 0
        if conn.in_transaction():
            await conn.commit()
        await conn.execute(text("ANALYZE"))
        await conn.commit()
    return 0


# --- recommendations and placements ---------------------------------------------------

RECOMMENDATION_FATES = (
    ("recommended", 40), ("shortlisted", 15), ("rejected", 20), ("hired", 5),
    ("onboarded", 15), ("withdrawn", 3), ("lapsed", 2),
)  # fmt: skip
RECOMMENDED_EVERY = 10  # one worker in ten has been recommended to a job


async def _placements(engine: AsyncEngine, scale: Scale) -> int | None:
    """One in ten workers (by id) recommended by their broker to a published job, at
    every stage; the onboarded ones with their placement (the job's wage copied). The
    generated jobs charge no placement fee, so no market money moves."""
    async with engine.connect() as conn:
        if await count(conn, Recommendation):
            return None
        jobs = (
            await conn.execute(
                select(
                    col(Job.id),
                    col(Job.organization_id),
                    col(Job.wage_min_fen),
                    col(Job.wage_max_fen),
                    col(Job.wage_unit),
                    col(Job.starts_on),
                )
                .where(col(Job.status) == "published")
                .order_by(col(Job.id))
            )
        ).all()
        if not jobs:
            return 0
        picked = (
            await conn.execute(
                select(col(Worker.id), col(Worker.broker_id), col(Broker.user_id))
                .join(Broker, col(Broker.id) == col(Worker.broker_id))
                .where(col(Worker.id) % RECOMMENDED_EVERY == 0)
                .order_by(col(Worker.id))
            )
        ).all()
        rng = random.Random(f"{scale.seed}:placements")
        fates = [name for name, weight in RECOMMENDATION_FATES for _ in range(weight)]
        sink = Sink(conn)
        rec_base = await _max_id(conn, Recommendation.__table__)  # type: ignore[attr-defined]
        recs: list[dict[str, Any]] = []
        placements: list[dict[str, Any]] = []
        await begin(conn)
        for n, (worker_id, broker_id, user_id) in enumerate(picked, start=1):
            job = jobs[rng.randrange(len(jobs))]
            fate = fates[rng.randrange(len(fates))]
            made = EPOCH + timedelta(seconds=rng.randrange(330 * 86400))
            decided = made + timedelta(days=rng.randint(1, 6))
            hired = fate in ("hired", "onboarded")
            rec_id = rec_base + n
            recs.append(
                {
                    "id": rec_id,
                    "job_id": job[0],
                    "worker_id": worker_id,
                    "broker_id": broker_id,
                    "note": None,
                    "status": fate,
                    "attribution_until": made + ATTRIBUTION,
                    "status_reason": None,
                    "created_by": user_id,
                    "created_at": made,
                    "decided_at": None
                    if fate in ("recommended", "withdrawn", "lapsed")
                    else decided,
                    "hired_at": decided if hired else None,
                    "updated_at": decided,
                }
            )
            if fate == "onboarded":
                placements.append(
                    {
                        "recommendation_id": rec_id,
                        "job_id": job[0],
                        "organization_id": job[1],
                        "broker_id": broker_id,
                        "worker_id": worker_id,
                        "starts_on": max(job[5], decided.date()),
                        "wage_min_fen": job[2],
                        "wage_max_fen": job[3],
                        "wage_unit": job[4],
                        "fee_fixed_fen": None,
                        "fee_share_bp": None,
                        "confirmed_by": user_id,
                        "confirmed_at": decided + timedelta(days=3),
                    }
                )
            if len(recs) >= BLOCK:
                await sink.write(Recommendation.__table__, recs)  # type: ignore[attr-defined]
                await sink.write(Placement.__table__, placements)  # type: ignore[attr-defined]
                recs, placements = [], []
        await sink.write(Recommendation.__table__, recs)  # type: ignore[attr-defined]
        await sink.write(Placement.__table__, placements)  # type: ignore[attr-defined]
        await fix_sequences(conn, [Recommendation.__table__])  # type: ignore[attr-defined]
        await conn.commit()
        return sum(sink.rows_written.values())


# --- the whole ---------------------------------------------------------------------------


async def generate(
    url: str,
    scale: Scale,
    cipher: DataCipher,
    *,
    progress: Progress = lambda _line: None,
    parts: tuple[str, ...] = (
        "accounts",
        "workers",
        "organizations",
        "jobs",
        "placements",
        "tasks",
    ),
    others: Others = Others(),
) -> Report:
    from web.scale import money

    report = Report(url=url, scale=scale)

    async def _prepare() -> int:
        await prepare(url)
        return 0

    await _timed(report, "prepare", progress, _prepare)
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            _villages, districts, _ = await _regions(conn)
        if "accounts" in parts:

            async def _accounts() -> int | None:
                offices = await _offices(engine, cipher, districts)
                async with engine.connect() as conn:
                    villages, _, _ = await _regions(conn)
                brokers = await _brokers(engine, scale, villages)
                if brokers is None and offices == 0:
                    return None
                return offices + 2 * (brokers or 0)

            await _timed(report, "accounts", progress, _accounts)
        world = await load_world(engine)
        if not world.broker_villages:
            raise RuntimeError("没有经纪人：先生成 accounts 部分")
        if "workers" in parts:
            await _timed(
                report, "workers", progress, lambda: _workers(engine, scale, world, cipher, others)
            )
        if "organizations" in parts:
            await _timed(
                report,
                "organizations",
                progress,
                lambda: _organizations(engine, scale, world, others),
            )
        if "jobs" in parts:
            await _timed(report, "jobs", progress, lambda: _jobs(engine, scale, world, others))
        if "placements" in parts:
            await _timed(report, "placements", progress, lambda: _placements(engine, scale))
        if "tasks" in parts and scale.tasks:
            await _timed(
                report, "tasks", progress, lambda: money.generate(engine, scale, world, progress)
            )
        await _timed(report, "analyze", progress, lambda: _analyze(engine))
        return report
    finally:
        await engine.dispose()
