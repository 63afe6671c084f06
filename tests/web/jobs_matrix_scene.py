"""Organisations and jobs for the authorisation matrix (tests/web/test_authz_matrix.py).

In each scope (渝中区 "own", 巫溪县 "other"): a verified employer with a published job,
a draft and a job waiting for review, and a pending organisation to verify; in 渝中区
also a verified agency the own employer authorised. The matrix's employer caller is a
member of the own employer and its agency caller of the agency.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from marketplace.db import unit_of_work
from marketplace.jobs.models import Job, JobStatus
from marketplace.organizations.credit_code import check_char
from marketplace.organizations.models import (
    AgencyAuthorization,
    Organization,
    OrganizationMember,
    OrganizationStatus,
)

OWN, OTHER = "own", "other"
_serial = itertools.count(1)


def matrix_credit_code(division: str, n: int) -> str:
    first17 = f"91{division}{n:09d}"
    return first17 + check_char(first17)


@dataclass
class JobsScene:
    org: dict[str, int] = field(default_factory=dict)  # verified employers
    pending_org: dict[str, int] = field(default_factory=dict)
    agency: int = 0
    job: dict[str, int] = field(default_factory=dict)  # published
    draft: dict[str, int] = field(default_factory=dict)
    pending_job: dict[str, int] = field(default_factory=dict)
    district: dict[str, str] = field(default_factory=dict)
    spare_employer: dict[str, int] = field(default_factory=dict)

    def path_values(self, path: str, scope: str) -> dict[str, str]:
        """Sample ids for the organisation and job placeholders of ``path``."""
        org = self.pending_org if path.endswith("/verify") else self.org
        job = {"/submit": self.draft, "/review": self.pending_job}.get(
            path[path.rfind("/") :], self.job
        )
        return {"{organization_id:int}": str(org[scope]), "{job_id:int}": str(job[scope])}

    def new_organization(self, scope: str, n: int) -> dict[str, Any]:
        return {
            "kind": "employer",
            "name": f"矩阵新单位{n}",
            "credit_code": matrix_credit_code(self.district[scope], 500 + n),
            "contact_name": "联系人",
            "contact_phone": "13800138000",
            "address": "矩阵测试地址",
            "region_code": self.district[scope],
        }

    def new_job(self, scope: str, n: int) -> dict[str, Any]:
        return {
            "organization_id": self.org[scope],
            "title": "电焊工",
            "description": f"矩阵岗位{n}",
            "headcount": 2,
            "wage_min_fen": 500_000,
            "wage_max_fen": 700_000,
            "wage_unit": "month",
            "work_region_code": self.district[scope],
            "starts_on": (date.today() + timedelta(days=10)).isoformat(),
        }

    def new_authorization(self, n: int) -> dict[str, Any]:
        return {
            "agency_id": self.agency,
            "document_ref": f"矩阵授权书{n}",
            "valid_from": date.today().isoformat(),
            "valid_until": (date.today() + timedelta(days=30)).isoformat(),
        }


def _org(kind: str, district: str, status: OrganizationStatus) -> Organization:
    n = next(_serial)
    return Organization(
        kind=kind,
        name=f"矩阵{'单位' if kind == 'employer' else '机构'}{n}",
        credit_code=matrix_credit_code(district, n),
        contact_name="联系人",
        contact_phone="13800138000",
        address="矩阵测试地址",
        licence_no="矩阵许可证" if kind == "agency" else None,
        region_code=district,
        status=status,
    )


def _job(org_id: int, district: str, status: JobStatus, title: str) -> Job:
    return Job(
        organization_id=org_id,
        title=title,
        description="矩阵测试岗位",
        headcount=3,
        wage_min_fen=500_000,
        wage_max_fen=700_000,
        wage_unit="month",
        work_region_code=district,
        starts_on=date.today() + timedelta(days=5),
        ends_on=date.today() + timedelta(days=60),
        status=status,
        review_district_code=district,
    )


async def make_jobs_scene(
    sessions: async_sessionmaker[AsyncSession],
    districts: dict[str, str],
    employer_user: int,
    agency_user: int,
    spare_employer: dict[str, int],
) -> JobsScene:
    scene = JobsScene(district=dict(districts), spare_employer=dict(spare_employer))
    async with unit_of_work(sessions) as session:
        for scope, district in districts.items():
            verified = _org("employer", district, OrganizationStatus.verified)
            pending = _org("employer", district, OrganizationStatus.pending)
            session.add_all([verified, pending])
            await session.flush()
            assert verified.id is not None
            assert pending.id is not None
            scene.org[scope], scene.pending_org[scope] = verified.id, pending.id
            rows = {
                "job": _job(verified.id, district, JobStatus.published, "钢筋工"),
                "draft": _job(verified.id, district, JobStatus.draft, "木工"),
                "pending_job": _job(verified.id, district, JobStatus.pending_review, "架子工"),
            }
            session.add_all(rows.values())
            await session.flush()
            for name, row in rows.items():
                assert row.id is not None
                getattr(scene, name)[scope] = row.id
        agency = _org("agency", districts[OWN], OrganizationStatus.verified)
        session.add(agency)
        await session.flush()
        assert agency.id is not None
        scene.agency = agency.id
        session.add_all(
            [
                OrganizationMember(organization_id=scene.org[OWN], user_id=employer_user),
                OrganizationMember(organization_id=agency.id, user_id=agency_user),
                AgencyAuthorization(
                    employer_id=scene.org[OWN],
                    agency_id=agency.id,
                    document_ref="矩阵授权书",
                    valid_from=date.today(),
                    valid_until=date.today() + timedelta(days=365),
                ),
            ]
        )
    return scene


def of(scene: Any) -> JobsScene:
    """The matrix scene's organisations and jobs (set by ``build_scene``)."""
    jobs: JobsScene | None = scene.jobs
    assert jobs is not None
    return jobs
