"""Authorisation in one place: role and region scope, checked together.

``can(actor, action, region_code=...)`` answers every question the web guards and
the services ask. A region scope is an NBS code prefix: 万州区 (500101) holds every
township and village whose code starts with 500101.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from marketplace.errors import Forbidden
from marketplace.regions.models import CITY_CODE


class Role(StrEnum):
    city_admin = "city_admin"
    district_admin = "district_admin"
    township_officer = "township_officer"
    village_officer = "village_officer"
    broker = "broker"
    employer = "employer"
    agency = "agency"
    finance = "finance"
    auditor = "auditor"


ROLE_LABELS = {
    Role.city_admin: "市人力社保局管理员",
    Role.district_admin: "区县人力社保局管理员",
    Role.township_officer: "乡镇（街道）经办人",
    Role.village_officer: "村（社区）经办人",
    Role.broker: "劳务经纪人",
    Role.employer: "用人单位",
    Role.agency: "人力资源服务机构",
    Role.finance: "财务人员",
    Role.auditor: "审计人员",
}

ADMIN_ROLES = frozenset({Role.city_admin, Role.district_admin})
OFFICER_ROLES = frozenset(
    {Role.city_admin, Role.district_admin, Role.township_officer, Role.village_officer}
)
STAFF_ROLES = OFFICER_ROLES | {Role.finance, Role.auditor}
TOTP_ROLES = frozenset({Role.city_admin, Role.district_admin, Role.finance, Role.auditor})
# Shorter idle timeout for accounts that can change settings, move money or read the audit log.
SENSITIVE_ROLES = TOTP_ROLES

# Which region levels each role's scope may be (by code length).
SCOPE_LENGTHS: dict[Role, frozenset[int]] = {
    Role.city_admin: frozenset({2}),
    Role.district_admin: frozenset({6}),
    Role.township_officer: frozenset({9}),
    Role.village_officer: frozenset({12}),
    Role.broker: frozenset({12}),
    Role.employer: frozenset({6, 9, 12}),
    Role.agency: frozenset({6, 9, 12}),
    Role.finance: frozenset({2, 6}),
    Role.auditor: frozenset({2, 6}),
}

# Which roles an administrator may create or edit, by the administrator's role.
MANAGEABLE_ROLES: dict[Role, frozenset[Role]] = {
    Role.city_admin: frozenset(Role),
    Role.district_admin: frozenset(
        {Role.township_officer, Role.village_officer, Role.broker, Role.employer, Role.agency}
    ),
}


@dataclass(frozen=True)
class Actor:
    """Who is acting: a logged-in user, or the system (CLI, outbox handlers)."""

    user_id: int | None
    username: str
    role: str
    region_code: str
    ip: str | None = None

    @property
    def is_system(self) -> bool:
        return self.user_id is None


SYSTEM = Actor(user_id=None, username="system", role="system", region_code=CITY_CODE)


def in_scope(actor: Actor, region_code: str | None) -> bool:
    """Is ``region_code`` inside the actor's region (or the actor the system)?"""
    if actor.is_system:
        return True
    return region_code is not None and region_code.startswith(actor.region_code)


# action -> roles allowed; region scope is checked on top where a region is given.
POLICIES: dict[str, frozenset[str]] = {
    "region.view": frozenset(Role),
    "region.set_population": frozenset({Role.city_admin, Role.district_admin}),
    "coverage.view": frozenset(STAFF_ROLES),
    "user.view": frozenset(ADMIN_ROLES),
    "user.create": frozenset(ADMIN_ROLES),
    "user.update": frozenset(ADMIN_ROLES),
    "audit.view": frozenset({Role.auditor}),
    # The worker register: brokers keep it for their villages; officers above the
    # village read it for their region. See docs/access.md.
    "worker.view": frozenset(
        {Role.broker, Role.city_admin, Role.district_admin, Role.township_officer}
    ),
    "worker.edit": frozenset({Role.broker}),
    "worker.reveal": frozenset(
        {Role.broker, Role.city_admin, Role.district_admin, Role.township_officer}
    ),
    # Broker applications and the broker record (docs/brokers.md). Which review step
    # an officer may take is decided by the state machine in marketplace/brokers/rules.py.
    "broker_application.view": frozenset(OFFICER_ROLES),
    "broker_application.decide": frozenset(
        {Role.village_officer, Role.township_officer, Role.district_admin}
    ),
    "broker.view": frozenset(STAFF_ROLES | {Role.broker}),
    "broker.update": frozenset(ADMIN_ROLES),
    "broker.set_status": frozenset(ADMIN_ROLES),
    "broker.recruitment_gaps": frozenset(
        {Role.city_admin, Role.district_admin, Role.township_officer}
    ),
    # Training, the question bank and exams (docs/training.md). Candidates who are
    # applicants sit the exam with an exam session token, not an account.
    "training.view": frozenset({Role.city_admin, Role.district_admin, Role.township_officer}),
    "training.manage": frozenset({Role.city_admin, Role.district_admin, Role.township_officer}),
    "training.course_edit": frozenset(ADMIN_ROLES),
    "question.view": frozenset(ADMIN_ROLES),
    "question.edit": frozenset({Role.city_admin}),
    "exam.take": frozenset({Role.broker}),
    "exam.view": frozenset({Role.city_admin, Role.district_admin, Role.township_officer}),
    "exam.policy": frozenset({Role.city_admin}),
    # Organisations and jobs (docs/jobs.md): employers and agencies post, the district
    # admin of the organisation's district verifies it and of the work district reviews.
    "organization.view": frozenset(Role),
    "organization.register": frozenset(
        {Role.employer, Role.agency, Role.city_admin, Role.district_admin}
    ),
    "organization.verify": frozenset({Role.city_admin, Role.district_admin}),
    "organization.manage_members": frozenset({Role.city_admin, Role.district_admin}),
    "organization.authorize": frozenset({Role.employer, Role.city_admin, Role.district_admin}),
    "job.view": frozenset(Role),
    "job.post": frozenset({Role.employer, Role.agency}),
    "job.review": frozenset({Role.city_admin, Role.district_admin}),
    # Matching and recommendations (docs/matching.md): brokers rank and recommend the
    # workers of their villages; employers see consenting workers masked and decide on
    # the recommended ones; officers read their region.
    "matching.candidates": frozenset(
        {
            Role.broker,
            Role.employer,
            Role.agency,
            Role.city_admin,
            Role.district_admin,
            Role.township_officer,
        }
    ),
    "matching.matches": frozenset(
        {Role.broker, Role.city_admin, Role.district_admin, Role.township_officer}
    ),
    "recommendation.view": frozenset(
        {
            Role.broker,
            Role.employer,
            Role.agency,
            Role.city_admin,
            Role.district_admin,
            Role.township_officer,
        }
    ),
    "recommendation.create": frozenset({Role.broker}),
    "recommendation.decide": frozenset({Role.employer, Role.agency}),
    "recommendation.confirm": frozenset({Role.broker}),
    "placement.report_wage": frozenset({Role.broker}),
    # Closing an arrears case is an officer's word (it earns the broker points).
    "arrears.resolve": frozenset({Role.district_admin, Role.township_officer}),
    "organization.standing": frozenset(
        {Role.broker, Role.city_admin, Role.district_admin, Role.township_officer}
    ),
    # Public-service tasks (docs/tasks.md): the city sets types and rates, districts
    # publish and review, townships give the first look where the district asks,
    # brokers claim and submit evidence.
    "task_type.view": frozenset(Role),
    "task_type.manage": frozenset({Role.city_admin}),
    "task.view": frozenset(
        {
            Role.broker,
            Role.city_admin,
            Role.district_admin,
            Role.township_officer,
            Role.village_officer,
        }
    ),
    "task.publish": frozenset(ADMIN_ROLES),
    "task.settings": frozenset(ADMIN_ROLES),
    "task.claim": frozenset({Role.broker}),
    "task.submit": frozenset({Role.broker}),
    "task.review": frozenset({Role.city_admin, Role.district_admin, Role.township_officer}),
    "evidence.view": frozenset(
        {Role.broker, Role.city_admin, Role.district_admin, Role.township_officer}
    ),
    "spot_check.view": frozenset(ADMIN_ROLES),
    "spot_check.draw": frozenset(ADMIN_ROLES),
    "spot_check.record": frozenset(ADMIN_ROLES),
    # Billing (docs/billing.md): only finance moves money, a second finance user
    # approves; auditors read the ledger; brokers see their own earnings only.
    "ledger.view": frozenset({Role.finance, Role.auditor}),
    "fund.appropriate": frozenset({Role.finance}),
    "fund.approve": frozenset({Role.finance}),
    "payout.build": frozenset({Role.finance}),
    "payout.approve": frozenset({Role.finance}),
    "payout.execute": frozenset({Role.finance}),
    "reconciliation.view": frozenset({Role.finance, Role.auditor}),
    "earnings.view": frozenset({Role.broker, Role.finance, Role.auditor}),
    "bank.edit": frozenset({Role.broker}),
    "fee.pay": frozenset({Role.employer, Role.agency, Role.finance}),
    "fee.refund": frozenset({Role.finance}),
    # Points and assessment (docs/scoring.md): brokers read their own scores (checked
    # in the service); officers read their region; the city sets the model.
    "score.view": frozenset(OFFICER_ROLES),
    "score.model": frozenset({Role.city_admin}),
    "score.compute": frozenset({Role.city_admin}),
    "score.decide": frozenset({Role.district_admin}),
}


def can(actor: Actor, action: str, *, region_code: str | None = None) -> bool:
    if actor.is_system:
        return True
    roles = POLICIES.get(action)
    if roles is None:
        raise KeyError(f"no policy declared for action {action!r}")
    if actor.role not in roles:
        return False
    return region_code is None or in_scope(actor, region_code)


def require(actor: Actor, action: str, *, region_code: str | None = None) -> None:
    if not can(actor, action, region_code=region_code):
        if (
            region_code is not None
            and POLICIES.get(action, frozenset())
            and actor.role in POLICIES[action]
        ):
            raise Forbidden(f"区划 {region_code} 不在您的管辖范围内", field="region_code")
        raise Forbidden("您的角色无权进行此操作")
