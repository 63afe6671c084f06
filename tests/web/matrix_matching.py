"""The authorisation matrix's matching objects: in each district an employer and an
agency organisation, a published job, and consenting workers — one to recommend, one
already recommended, one placed. In 渝中区 the employer and agency callers belong to
the organisations and the broker caller made the recommendations."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace.access import Role
from marketplace.accounts import service as accounts
from marketplace.accounts.models import User
from marketplace.clock import utcnow
from marketplace.crypto import DataCipher
from marketplace.db import unit_of_work
from marketplace.jobs.models import Job, JobStatus
from marketplace.organizations.models import Organization, OrganizationMember
from marketplace.placements.models import Placement, Recommendation
from marketplace.workers import service as workers
from marketplace.workers.models import WorkerCreate
from marketplace.workers.scope import broker_of
from matching.normalize import TaxonomyOccupationMapper


async def _org(session: AsyncSession, kind: str, region: str, n: int, member: int | None) -> int:
    """The member's organisation (an account belongs to one), else a new one."""
    if member is not None:
        existing = (
            await session.execute(
                select(col(OrganizationMember.organization_id)).where(
                    col(OrganizationMember.user_id) == member
                )
            )
        ).scalar_one_or_none()
        if existing is not None:
            return int(existing)
    org = Organization(
        kind=kind,
        name=f"矩阵{kind}{n}",
        credit_code=f"91{region}MA{n:08d}"[:18],
        contact_name="联系人",
        contact_phone="13900000000",
        address="地址",
        region_code=region,
        status="verified",
        verified_at=utcnow(),
    )
    session.add(org)
    await session.flush()
    assert org.id is not None
    if member is not None:
        session.add(OrganizationMember(organization_id=org.id, user_id=member))
    return org.id


async def add_matching(scene: Any, cipher: DataCipher, make_id: Any) -> None:
    """Fill ``scene.job``, ``scene.match_worker``, ``scene.recommendation`` and
    ``scene.placement`` for both scopes."""
    sessions = scene.sessions
    today = date.today()
    for n, scope in enumerate(("own", "other"), start=1):
        own = scope == "own"
        async with unit_of_work(sessions) as session:
            keeper_user = await session.get(User, scene.target_user[scope])
            assert keeper_user is not None
            keeper = accounts.actor_for(keeper_user)
            made = []
            for k in range(3):
                worker = await workers.register(
                    session=session,
                    actor=keeper,
                    cipher=cipher,
                    data=WorkerCreate(
                        name=f"匹配{'甲乙丙'[k]}",
                        id_number=make_id(7000 + n * 10 + k),
                        hukou_village_code=scene.village[scope],
                        skills=["电焊"],
                        consent_to_recommend=True,
                        consent_method="书面",
                    ),
                    occupations=TaxonomyOccupationMapper(),
                )
                made.append(worker.id)
            district = scene.district[scope]
            employer = scene.callers[Role.employer].user_id if own else None
            agency_member = scene.callers[Role.agency].user_id if own else None
            org_id = await _org(session, "employer", district, n, employer)
            agency_id = await _org(session, "agency", district, n + 50, agency_member)
            job = Job(
                organization_id=org_id,
                agency_id=agency_id,
                title="电焊工",
                occupation_code="welder",
                headcount=5,
                wage_min_fen=300_00,
                wage_max_fen=350_00,
                wage_unit="day",
                work_region_code=district,
                starts_on=today + timedelta(days=10),
                status=JobStatus.published,
                review_district_code=district,
            )
            session.add(job)
            await session.flush()
            assert job.id is not None
            broker_actor = keeper
            if own:
                caller = await session.get(User, scene.callers[Role.broker].user_id)
                assert caller is not None
                broker_actor = accounts.actor_for(caller)
            broker = await broker_of(session, broker_actor)
            assert broker is not None
            assert broker.id is not None
            now = utcnow()
            pending = Recommendation(
                job_id=job.id,
                worker_id=made[1],
                broker_id=broker.id,
                attribution_until=now + timedelta(days=7),
            )
            placed = Recommendation(
                job_id=job.id,
                worker_id=made[2],
                broker_id=broker.id,
                status="onboarded",
                starts_on=today - timedelta(days=40),
                attribution_until=now,
            )
            session.add_all([pending, placed])
            await session.flush()
            assert placed.id is not None
            placement = Placement(
                recommendation_id=placed.id,
                job_id=job.id,
                organization_id=org_id,
                broker_id=broker.id,
                worker_id=made[2],
                starts_on=today - timedelta(days=40),
                wage_min_fen=300_00,
                wage_max_fen=350_00,
                wage_unit="day",
            )
            session.add(placement)
            await session.flush()
            scene.job[scope] = job.id
            scene.match_worker[scope] = made[0]
            scene.recommendation[scope] = pending.id
            scene.placement[scope] = placement.id


def matching_values(path: str, scene: Any, scope: str) -> dict[str, str]:
    """Path values for the matching routes; a job's candidates are those of this scene's
    job (the jobs scene picks its own job for the other job routes)."""
    values = {}
    if scene.recommendation:
        values["{recommendation_id:int}"] = str(scene.recommendation[scope])
        values["{placement_id:int}"] = str(scene.placement[scope])
        if path.endswith("/candidates"):
            values["{job_id:int}"] = str(scene.job[scope])
    return values
