"""Demo data for ``laowu demo``: deterministic from a seed, and safe to load twice.

Three districts — 渝中区 (urban), 巫溪县 (rural), 万州区 (mixed) — each get an account
for every role, village populations, and brokers in most (not all) villages so the
coverage page has gaps to show. Later issues add their own objects here.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from faker import Faker
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from marketplace.access import SYSTEM, TOTP_ROLES, Role
from marketplace.accounts import service as accounts
from marketplace.accounts.models import User, UserCreate
from marketplace.brokers.models import Broker, BrokerVillage
from marketplace.crypto import DataCipher
from marketplace.db import unit_of_work
from marketplace.regions.models import Region, RegionLevel

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
    factory: async_sessionmaker[AsyncSession], cipher: DataCipher, *, seed: int
) -> list[Login]:
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
    return logins


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
