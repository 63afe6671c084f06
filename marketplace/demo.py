"""Demo data for ``laowu demo``: deterministic from a seed, and safe to load twice.

Three districts — 渝中区 (urban), 巫溪县 (rural), 万州区 (mixed) — each get an account
for every role, village populations, and brokers in most (not all) villages so the
coverage page has gaps to show. Later issues add their own objects here.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Protocol

from faker import Faker
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from marketplace import audit
from marketplace.access import SYSTEM, TOTP_ROLES, Role
from marketplace.accounts import service as accounts
from marketplace.accounts.models import User, UserCreate
from marketplace.brokers.models import Broker, BrokerVillage
from marketplace.clock import utcnow
from marketplace.crypto import DataCipher
from marketplace.db import unit_of_work
from marketplace.jobs.demo import demo_jobs
from marketplace.placements.demo import demo_placements
from marketplace.regions.models import Region, RegionLevel
from marketplace.scoring.demo import load as demo_scores
from marketplace.tasks.demo import demo_tasks
from marketplace.workers import importing, records
from marketplace.workers import service as workers
from marketplace.workers.identity import check_char
from marketplace.workers.models import Worker, WorkerChange
from marketplace.workers.service import OccupationMapper

DEMO_PASSWORD = "Laowu-demo-2026"  # noqa: S105  (printed for demo logins; never in production)


@dataclass(frozen=True)
class DemoDistrict:
    key: str
    code: str
    urban_share: float  # share of villages that are dense urban communities
    broker_share: float  # share of villages that already have a broker


DISTRICTS = (
    DemoDistrict("yuzhong", "500103", urban_share=1.0, broker_share=0.85),
    DemoDistrict("wuxi", "500238", urban_share=0.1, broker_share=0.75),
    DemoDistrict("wanzhou", "500101", urban_share=0.4, broker_share=0.8),
)

Login = tuple[str, str, str, str | None]  # username, role, region, TOTP secret


async def load_demo(
    factory: async_sessionmaker[AsyncSession],
    cipher: DataCipher,
    *,
    seed: int,
    vocabulary: DemoVocabulary,
    media_dir: Path | None = None,
) -> list[Login]:
    """The domain's demo data (billing's is added by ``web.demo``); idempotent."""
    logins: list[Login] = []
    async with unit_of_work(factory) as session:
        logins.append(
            await _account(session, cipher, "city_admin", Role.city_admin, "50", "市局管理员")
        )
        logins.append(
            await _account(session, cipher, "city_finance", Role.finance, "50", "市局财务")
        )
        logins.append(
            await _account(session, cipher, "city_auditor", Role.auditor, "50", "市局审计")
        )
        for district in DISTRICTS:
            rng = random.Random(f"{seed}:{district.code}")
            fake = Faker("zh_CN")
            fake.seed_instance(f"{seed}:{district.code}")
            villages = await _villages(session, district.code)
            await _populations(session, district, villages, rng)
            logins.extend(await _district_accounts(session, cipher, district, villages))
            await _brokers(session, district, villages, rng, fake)
        await demo_workers(session, cipher, seed=seed, vocabulary=vocabulary)
        logins.extend(await _demo_broker_chain(session, cipher, seed=seed))
        await _demo_training(session, seed=seed)
        await demo_jobs(session, seed=seed)
        # After the jobs demo: recommendations and placements at every stage.
        await demo_placements(session, seed=seed)
        if media_dir is not None:  # tasks carry evidence photos under the media directory
            await demo_tasks(session, media_dir, seed=seed, districts=[d.code for d in DISTRICTS])
        # Last: the months scored from everything above (docs/scoring.md).
        await demo_scores(session, seed=seed)
    return logins


async def _demo_training(session: AsyncSession, *, seed: int) -> None:
    """The question bank, a year of training with attendance, and exam attempts
    (marketplace/brokers/training_demo.py)."""
    from marketplace.brokers import training_demo

    await training_demo.load_bank(session)
    names = {"yuzhong": "渝中区", "wuxi": "巫溪县", "wanzhou": "万州区"}
    for district in DISTRICTS:
        await training_demo.load(session, district.code, names[district.key], seed)


async def _demo_broker_chain(
    session: AsyncSession, cipher: DataCipher, *, seed: int
) -> list[Login]:
    """Broker numbers and flags, and applications at every step (marketplace/brokers/demo.py)."""
    from marketplace.brokers import demo as broker_demo  # it builds on this module's helpers

    made: list[Login] = []
    for district in DISTRICTS:
        rng = random.Random(f"{seed}:{district.code}:brokers")
        fake = Faker("zh_CN")
        fake.seed_instance(f"{seed}:{district.code}:applicants")
        await broker_demo.number_existing_brokers(session, district.code, rng)
        villages = await _villages(session, district.code)
        for username in await broker_demo.demo_applications(
            session,
            cipher,
            district.code,
            rng=rng,
            fake=fake,
            id_number=demo_id_number,
            password=DEMO_PASSWORD,
            officer_village=villages[0].code,
        ):
            made.append((username, Role.broker.value, district.code, None))
    return made


async def _villages(session: AsyncSession, district_code: str) -> list[Region]:
    rows = await session.execute(
        select(Region)
        .where(col(Region.level) == RegionLevel.village, col(Region.code).startswith(district_code))
        .order_by(col(Region.code))
    )
    return list(rows.scalars())


async def _populations(
    session: AsyncSession, district: DemoDistrict, villages: list[Region], rng: random.Random
) -> None:
    """Populations are drawn from the seed, so a second run writes the same numbers."""
    for village in villages:
        urban = village.kind == "community" or rng.random() < district.urban_share * 0.2
        population = rng.randint(3_000, 14_000) if urban else rng.randint(600, 5_600)
        if village.population != population:
            # Set on the loaded row: an ORM UPDATE per village would re-scan the
            # identity map each time (quadratic; most of a first ``laowu demo``).
            village.population = population
    await session.flush()


async def _district_accounts(
    session: AsyncSession, cipher: DataCipher, district: DemoDistrict, villages: list[Region]
) -> list[Login]:
    township = villages[0].parent_code or district.code
    village = villages[0].code
    name = {"yuzhong": "渝中", "wuxi": "巫溪", "wanzhou": "万州"}[district.key]
    plan = [
        ("admin", Role.district_admin, district.code, f"{name}区县管理员"),
        ("finance", Role.finance, district.code, f"{name}财务"),
        ("auditor", Role.auditor, district.code, f"{name}审计"),
        ("township", Role.township_officer, township, f"{name}乡镇经办人"),
        ("village", Role.village_officer, village, f"{name}村社区经办人"),
        ("broker", Role.broker, village, f"{name}经纪人"),
        ("employer", Role.employer, district.code, f"{name}用人单位"),
        ("agency", Role.agency, district.code, f"{name}人力资源公司"),
    ]
    return [
        await _account(session, cipher, f"{district.key}_{suffix}", role, region, display)
        for suffix, role, region, display in plan
    ]


async def _account(
    session: AsyncSession, cipher: DataCipher, username: str, role: Role, region: str, display: str
) -> Login:
    existing = (
        await session.execute(select(User).where(col(User.username) == username))
    ).scalar_one_or_none()
    if existing is None:
        data = UserCreate(
            username=username,
            display_name=display,
            role=role,
            region_code=region,
            password=DEMO_PASSWORD,
        )
        existing, _ = await accounts.create_user(
            session=session, actor=SYSTEM, data=data, cipher=cipher
        )
    secret = None
    if role in TOTP_ROLES and existing.totp_secret_enc:
        secret = cipher.decrypt(existing.totp_secret_enc, context="totp")
    return username, role.value, region, secret


async def _brokers(
    session: AsyncSession,
    district: DemoDistrict,
    villages: list[Region],
    rng: random.Random,
    fake: Faker,
) -> None:
    """Brokers without accounts yet (the brokers issue certifies real ones)."""
    present = set(
        (
            await session.execute(
                select(col(Broker.village_code))
                .where(col(Broker.village_code).startswith(district.code))
                .group_by(Broker.village_code)
                .having(func.count() > 0)
            )
        ).scalars()
    )
    added: list[Broker] = []
    for village in villages:
        staffed = rng.random() < district.broker_share
        extra = rng.random() < 0.3
        names = [fake.name(), fake.name()]
        if village.code in present or not staffed:
            continue
        added.append(Broker(name=names[0], village_code=village.code))
        if extra:
            added.append(Broker(name=names[1], village_code=village.code))
    session.add_all(added)
    await session.flush()
    session.add_all(BrokerVillage(broker_id=b.id or 0, village_code=b.village_code) for b in added)
    await session.flush()


# --- workers -------------------------------------------------------------------------

WORKERS_PER_DISTRICT = 7_000
DEMO_REGISTER_AGE = timedelta(days=330)
NEAR_DUPLICATE_SHARE = 0.01
# Status weights: most rural workers are away or working locally; some are looking.
STATUSES = (
    ("employed_away", 40),
    ("employed_local", 30),
    ("seeking", 15),
    ("not_in_labour_force", 10),
    ("unknown", 5),
)
NAME_SLIPS = {"国": "囯", "建": "健", "华": "化", "明": "名", "伟": "玮", "军": "君", "芳": "方"}


def demo_id_number(rng: random.Random, district_code: str) -> tuple[str, date]:
    """A valid resident ID number (GB 11643 check character) of the district, born
    1960–2005."""
    born = date(1960, 1, 1) + timedelta(
        days=rng.randrange((date(2005, 12, 31) - date(1960, 1, 1)).days)
    )
    first17 = f"{district_code}{born:%Y%m%d}{rng.randrange(1000):03d}"
    return first17 + check_char(first17), born


def _slip(name: str, rng: random.Random) -> str:
    """The same name with one character mistyped (王建国 → 王建囯)."""
    for i in range(len(name) - 1, 0, -1):
        if name[i] in NAME_SLIPS:
            return name[:i] + NAME_SLIPS[name[i]] + name[i + 1 :]
    return name[:-1] + rng.choice("一二三文武")


def _demo_values(
    rng: random.Random, fake: Faker, village: str, district_code: str, skills_pool: list[list[str]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    number, born = demo_id_number(rng, district_code)
    status = rng.choices([s for s, _ in STATUSES], weights=[w for _, w in STATUSES])[0]
    unit = rng.choice(["day", "day", "month", "hour"])
    low = {"day": rng.randrange(150, 350) * 100, "month": rng.randrange(30, 90) * 10_000,
           "hour": rng.randrange(18, 40) * 100}[unit]  # fmt: skip
    consent = rng.random() < 0.7
    away = status == "employed_away"
    values: dict[str, Any] = {
        "name": fake.name(),
        "id_number": number,
        "phone": f"1{rng.choice('35789')}{rng.randrange(10**9):09d}",
        "hukou_village_code": village,
        "current_region_code": None if away else village,
        "current_location_text": rng.choice(
            ["广东省东莞市", "浙江省宁波市", "上海市", "福建省泉州市"]
        )
        if away
        else None,
        "employment_status": status,
        "skills": rng.choice(skills_pool),
        "certificates": [],
        "wage_min_fen": low,
        "wage_max_fen": low + low // 4,
        "wage_unit": unit,
        "available_from": None,
        "mobility": rng.choice(["local", "chongqing", "anywhere"]),
        "training_wishes": [],
        "consent_to_recommend": consent,
        "consent_method": rng.choice(["书面", "口头", "电子"]) if consent else None,
        "note": None,
    }
    gender = "male" if int(number[16]) % 2 == 1 else "female"
    return values, {"gender": gender, "birth_date": born}


def _skills_pool(rng: random.Random, vocabulary: DemoVocabulary) -> list[list[str]]:
    """Skill lists as brokers type them: taxonomy names and synonyms, one to three."""
    terms = vocabulary.skill_terms()
    return [rng.sample(terms, rng.randint(1, 3)) for _ in range(500)]


async def demo_workers(
    session: AsyncSession, cipher: DataCipher, *, seed: int, vocabulary: DemoVocabulary
) -> int:
    """About 21,000 workers kept by the demo brokers of their villages, with a few
    near-duplicates (same phone, a one-character name slip). Bulk inserted with their
    creation history and one audit entry; no ``worker.changed`` events (run
    ``laowu index rebuild`` to index them). A record whose ID number is already
    registered is skipped, so a second run adds nothing."""
    added = 0
    for district in DISTRICTS:
        rng = random.Random(f"{seed}:{district.code}:workers")
        fake = Faker("zh_CN")
        fake.seed_instance(f"{seed}:{district.code}:workers")
        brokers = list(
            (
                await session.execute(
                    select(Broker)
                    .where(col(Broker.village_code).startswith(district.code))
                    .order_by(col(Broker.id))
                )
            ).scalars()
        )
        if not brokers:
            continue
        pool = _skills_pool(rng, vocabulary)
        planned: list[tuple[int, dict[str, Any], dict[str, Any]]] = []
        for n in range(WORKERS_PER_DISTRICT):
            broker = brokers[n % len(brokers)]
            values, derived = _demo_values(rng, fake, broker.village_code, district.code, pool)
            planned.append((broker.id or 0, values, derived))
            if rng.random() < NEAR_DUPLICATE_SHARE:
                twin, twin_derived = _demo_values(
                    rng, fake, broker.village_code, district.code, pool
                )
                if len(values["name"]) < 3:  # a slip in a two-character name is not flagged
                    values["name"] += rng.choice("华明军芳国")
                twin.update(name=_slip(values["name"], rng), phone=values["phone"])
                planned.append((broker.id or 0, twin, twin_derived))
        added += await _insert_workers(session, cipher, planned, vocabulary)
    if added:
        await audit.record(
            session=session,
            actor=SYSTEM,
            action="worker.demo_load",
            object_type="worker",
            detail={"created": added},
        )
    return added


async def _insert_workers(
    session: AsyncSession,
    cipher: DataCipher,
    planned: list[tuple[int, dict[str, Any], dict[str, Any]]],
    occupations: OccupationMapper,
    batch: int = 2_000,
) -> int:
    # The demo register was drawn up last year, so past months have a register to
    # keep up to date (and to score: marketplace/scoring/demo.py verifies it monthly).
    now = utcnow() - DEMO_REGISTER_AGE
    unique: dict[str, tuple[int, dict[str, Any], dict[str, Any]]] = {}
    for item in planned:
        unique.setdefault(cipher.lookup_hash(item[1]["id_number"]), item)
    digests = list(unique)
    added = 0
    connection = await session.connection()
    for start in range(0, len(digests), batch):
        chunk = digests[start : start + batch]
        taken = set(
            (
                await connection.execute(
                    select(col(Worker.id_number_hash)).where(col(Worker.id_number_hash).in_(chunk))
                )
            ).scalars()
        )
        fresh = [
            (
                {
                    **importing.EMPTY_ROW,
                    **workers.new_values(
                        values=values,
                        derived=derived,
                        broker_id=broker_id,
                        actor=SYSTEM,
                        cipher=cipher,
                        occupations=occupations,
                        now=now,
                    ),
                },
                values,
            )
            for digest in chunk
            if digest not in taken
            for broker_id, values, derived in [unique[digest]]
        ]
        if not fresh:
            continue
        await connection.execute(insert(Worker.__table__), [c for c, _ in fresh])  # type: ignore[attr-defined]
        found = await connection.execute(
            select(col(Worker.id_number_hash), col(Worker.id)).where(
                col(Worker.id_number_hash).in_([c["id_number_hash"] for c, _ in fresh])
            )
        )
        ids = {str(digest): int(wid or 0) for digest, wid in found.all()}
        history: list[dict[str, Any]] = []
        for c, v in fresh:
            history += records.change_values(
                worker_id=ids[c["id_number_hash"]],
                action="create",
                old={},
                new=v,
                actor_user_id=None,
                at=now,
                cipher=cipher,
            )
        await connection.execute(insert(WorkerChange.__table__), history)  # type: ignore[attr-defined]
        added += len(fresh)
    return added


class DemoVocabulary(OccupationMapper, Protocol):
    """Skills for demo workers and their occupations, given by ``web`` (the taxonomy
    lives in ``matching``, which ``marketplace`` does not import)."""

    def skill_terms(self) -> list[str]: ...
