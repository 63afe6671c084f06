"""``laowu jobs expire``: jobs past their end date expire, once."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest
from sqlalchemy import select
from sqlmodel import col

from marketplace.db import create_engine, session_factory, unit_of_work
from marketplace.jobs.models import Job, JobStatus
from marketplace.organizations.models import Organization, OrganizationStatus
from tests.conftest import YUZHONG
from tests.web.jobs_matrix_scene import matrix_credit_code
from tests.web.test_cli import db_env, env, query, run  # noqa: F401  (db_env, env: fixtures)


async def _seed(url: str) -> None:
    engine = create_engine(url)
    try:
        async with unit_of_work(session_factory(engine)) as session:
            org = Organization(
                kind="employer",
                name="命令行测试单位",
                credit_code=matrix_credit_code(YUZHONG, 77),
                contact_name="张",
                contact_phone="13800138000",
                address="渝中区",
                region_code=YUZHONG,
                status=OrganizationStatus.verified,
            )
            session.add(org)
            await session.flush()
            assert org.id is not None
            for ends in (date(2026, 1, 10), date(2026, 1, 20)):
                session.add(
                    Job(
                        organization_id=org.id,
                        title="搬运工",
                        headcount=1,
                        wage_min_fen=15_000,
                        wage_max_fen=20_000,
                        wage_unit="day",
                        work_region_code=YUZHONG,
                        starts_on=date(2026, 1, 1),
                        ends_on=ends,
                        status=JobStatus.published,
                        review_district_code=YUZHONG,
                    )
                )
    finally:
        await engine.dispose()


@pytest.mark.usefixtures("db_env")
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_jobs_expire_command(db_url: str) -> None:
    asyncio.run(_seed(db_url))
    first = run("jobs", "expire", "--today", "2026-01-15")
    assert first.exit_code == 0, first.output
    assert "已过期岗位：1 个" in first.stdout
    again = run("jobs", "expire", "--today", "2026-01-15")
    assert "已过期岗位：0 个" in again.stdout
    statuses = query(db_url, select(col(Job.ends_on), col(Job.status)).order_by(col(Job.id)))
    assert [tuple(r) for r in statuses] == [
        (date(2026, 1, 10), "expired"),
        (date(2026, 1, 20), "published"),
    ]
    bad = run("jobs", "expire", "--today", "15/01/2026")
    assert bad.exit_code != 0
