"""The jobs demo: 2,000 jobs in every state from valid organisations, loaded once."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from marketplace.db import unit_of_work
from marketplace.jobs.demo import JOBS, TITLES, demo_jobs
from marketplace.jobs.models import Job, JobStatus
from marketplace.organizations.credit_code import parse_credit_code
from marketplace.organizations.models import Organization, OrganizationStatus
from matching.normalize import normalize


def test_demo_titles_are_what_the_normaliser_reads() -> None:
    for title in TITLES:
        match = normalize(title.title)
        assert match is not None, title.title
        assert match.key == title.occupation, title.title


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_demo_jobs(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with unit_of_work(sessions) as session:
        assert await demo_jobs(session, seed=7) == JOBS
    async with unit_of_work(sessions) as session:
        assert await demo_jobs(session, seed=7) == 0
    async with sessions() as session:
        orgs = {o.id: o for o in (await session.execute(select(Organization))).scalars()}
        jobs = list((await session.execute(select(Job))).scalars())
    assert len(jobs) == JOBS
    for org in orgs.values():
        assert parse_credit_code(org.credit_code) == org.credit_code
    assert {o.status for o in orgs.values()} == set(OrganizationStatus)
    states = Counter(job.status for job in jobs)
    assert set(states) == set(JobStatus)
    assert states[JobStatus.published] > JOBS // 2
    for job in jobs:
        if orgs[job.organization_id].status != OrganizationStatus.verified:
            assert job.status == JobStatus.draft
        if job.status == JobStatus.published:
            assert not [f for f in job.flags if f["blocking"]]
    outside = [job for job in jobs if not job.work_region_code.startswith("50")]
    assert len(outside) > 200
    assert all(job.work_location_text and job.agency_id for job in outside)
    assert any(f["blocking"] for job in jobs for f in job.flags)
