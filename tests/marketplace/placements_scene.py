"""A small marketplace for recommendation tests: two brokers sharing a village, a
consenting and a non-consenting worker, an employer with a published job, and a
second employer who has nothing to do with it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from marketplace.access import Actor
from marketplace.accounts import service as accounts
from marketplace.brokers.models import BrokerVillage
from marketplace.clock import utcnow
from marketplace.crypto import DataCipher
from marketplace.db import unit_of_work
from marketplace.jobs.models import Job, JobStatus
from marketplace.organizations.models import Organization, OrganizationMember
from marketplace.regions.models import Region
from marketplace.workers import service as workers
from marketplace.workers.models import WorkerCreate
from marketplace.workers.scope import broker_of
from matching.normalize import TaxonomyOccupationMapper
from tests.conftest import WUXI, YUZHONG
from tests.marketplace.test_workers_rules import make_id

# Credit codes pass GB 32100 only by chance; these tables skip the check.
CREDIT = iter(f"91500103MA{n:07d}X" for n in range(1, 10_000))


@dataclass
class Scene:
    sessions: async_sessionmaker[AsyncSession]
    cipher: DataCipher
    village: str
    other_village: str
    broker_a: Actor
    broker_b: Actor  # serves the same village (assigned)
    broker_far: Actor  # 巫溪县
    broker_a_id: int
    broker_b_id: int
    employer: Actor
    other_employer: Actor
    officer: Actor
    org_id: int
    job_id: int
    worker_id: int  # consents, welder, kept by broker A
    silent_worker_id: int  # no consent
    accounts: dict[str, Any]


async def _villages(session: AsyncSession, district: str, n: int) -> list[str]:
    rows = await session.execute(
        select(col(Region.code))
        .where(col(Region.level) == "village", col(Region.code).startswith(district))
        .order_by(col(Region.code))
        .limit(n)
    )
    return [str(c) for c in rows.scalars()]


async def organization(
    sessions: async_sessionmaker[AsyncSession], name: str, member_ids: list[int]
) -> int:
    async with unit_of_work(sessions) as session:
        org = Organization(
            kind="employer",
            name=name,
            credit_code=next(CREDIT),
            contact_name="李经理",
            contact_phone="13900001111",
            address="重庆市渝中区解放碑",
            region_code=YUZHONG,
            status="verified",
            verified_at=utcnow(),
        )
        session.add(org)
        await session.flush()
        assert org.id is not None
        for user_id in member_ids:
            session.add(OrganizationMember(organization_id=org.id, user_id=user_id))
        return org.id


async def job(
    sessions: async_sessionmaker[AsyncSession], org_id: int, *, region: str, **fields: Any
) -> int:
    values: dict[str, Any] = {
        "organization_id": org_id,
        "title": "电焊工",
        "description": "钢结构厂房焊接",
        "occupation_code": "welder",
        "headcount": 3,
        "wage_min_fen": 300_00,
        "wage_max_fen": 380_00,
        "wage_unit": "day",
        "work_region_code": region,
        "starts_on": date.today() + timedelta(days=7),
        "certificates_required": ["焊工证"],
        "fee_fixed_fen": 500_00,
        "status": JobStatus.published,
        "review_district_code": region[:6],
        **fields,
    }
    async with unit_of_work(sessions) as session:
        row = Job(**values)
        session.add(row)
        await session.flush()
        assert row.id is not None
        return row.id


async def build(
    sessions: async_sessionmaker[AsyncSession], make_account: Any, cipher: DataCipher
) -> Scene:
    async with sessions() as session:
        own = await _villages(session, YUZHONG, 2)
        other = await _villages(session, WUXI, 1)
    a = await make_account("broker", own[0])
    b = await make_account("broker", own[1])
    far = await make_account("broker", other[0])
    employer = await make_account("employer", YUZHONG)
    other_employer = await make_account("employer", YUZHONG)
    officer = await make_account("district_admin", YUZHONG)
    actor = {k: accounts.actor_for(v.user) for k, v in locals().items() if hasattr(v, "user")}
    async with unit_of_work(sessions) as session:
        row_a = await broker_of(session, actor["a"])
        row_b = await broker_of(session, actor["b"])
        assert row_a is not None
        assert row_b is not None
        assert row_a.id is not None
        assert row_b.id is not None
        session.add(BrokerVillage(broker_id=row_b.id, village_code=own[0]))
    ids = []
    async with unit_of_work(sessions) as session:
        for n, consent in ((1, True), (2, False)):
            worker = await workers.register(
                session=session,
                actor=actor["a"],
                cipher=cipher,
                data=WorkerCreate(
                    name=f"张{'一二'[n - 1]}",
                    id_number=make_id(date(1985, 5, n), 100 + n),
                    phone=f"1380000{n:04d}",
                    hukou_village_code=own[0],
                    skills=["电焊"],
                    employment_status="seeking",
                    consent_to_recommend=consent,
                    consent_method="书面" if consent else None,
                ),
                occupations=TaxonomyOccupationMapper(),
            )
            assert worker.id is not None
            ids.append(worker.id)
    org_id = await organization(sessions, "渝中钢构有限公司", [employer.id])
    await organization(sessions, "别家公司", [other_employer.id])
    job_id = await job(sessions, org_id, region=YUZHONG)
    return Scene(
        sessions=sessions,
        cipher=cipher,
        village=own[0],
        other_village=other[0],
        broker_a=actor["a"],
        broker_b=actor["b"],
        broker_far=actor["far"],
        broker_a_id=row_a.id,
        broker_b_id=row_b.id,
        employer=actor["employer"],
        other_employer=actor["other_employer"],
        officer=actor["officer"],
        org_id=org_id,
        job_id=job_id,
        worker_id=ids[0],
        silent_worker_id=ids[1],
        accounts={
            "a": a,
            "b": b,
            "far": far,
            "employer": employer,
            "other_employer": other_employer,
            "officer": officer,
        },
    )
