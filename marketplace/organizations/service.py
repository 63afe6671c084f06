"""Organisations: register, read, verify, link member accounts, record authorisations.

Who sees what (docs/jobs.md): officers and finance/audit staff see the organisations
registered in their region; an employer or agency account sees its own organisation
and those it works with (authorisations either way, employers it registered); brokers
see verified organisations (they send workers to them). Anything else is a 404.
"""

from __future__ import annotations

import re
from datetime import date

from sqlalchemy import ColumnElement, bindparam, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace import audit
from marketplace.access import Actor, Role, in_scope, require
from marketplace.accounts.models import User
from marketplace.clock import utcnow
from marketplace.db import fetch_page
from marketplace.errors import Conflict, Forbidden, Invalid, NotFound
from marketplace.notifications import service as inbox
from marketplace.organizations.credit_code import parse_credit_code
from marketplace.organizations.models import (
    STATUS_LABELS,
    AgencyAuthorization,
    AuthorizationCreate,
    MemberAdd,
    MemberPublic,
    Organization,
    OrganizationCreate,
    OrganizationKind,
    OrganizationMember,
    OrganizationStatus,
    VerifyRequest,
)
from marketplace.regions.models import CITY_CODE, Region, RegionLevel
from marketplace.workers.identity import parse_mobile

ORG_ROLES = frozenset({Role.employer, Role.agency})
# Read across regions: brokers look at verified organisations anywhere.
_REGION_READERS = frozenset(
    {
        Role.city_admin,
        Role.district_admin,
        Role.township_officer,
        Role.village_officer,
        Role.finance,
        Role.auditor,
    }
)
_LANDLINE = re.compile(r"^0\d{2,3}-?\d{7,8}(-\d{1,6})?$")


# --- who belongs where -----------------------------------------------------------------


# Read on most of an organisation account's requests: built once.
_ORGANIZATION_OF = (
    select(Organization)
    .join(OrganizationMember, col(OrganizationMember.organization_id) == Organization.id)
    .where(col(OrganizationMember.user_id) == bindparam("user_id"))
)


async def organization_of(session: AsyncSession, actor: Actor) -> Organization | None:
    """The organisation an employer or agency account acts for, if linked."""
    if actor.user_id is None or actor.role not in ORG_ROLES:
        return None
    return (
        await session.execute(_ORGANIZATION_OF, {"user_id": actor.user_id})
    ).scalar_one_or_none()


async def require_organization(session: AsyncSession, actor: Actor) -> Organization:
    org = await organization_of(session, actor)
    if org is None:
        raise Forbidden("您的账号尚未关联单位；请先登记单位，或请区县人力社保局关联")
    return org


async def partner_ids(session: AsyncSession, org: Organization) -> set[int]:
    """Organisations ``org`` works with through an authorisation (either side), and
    employers it registered."""
    rows = await session.execute(
        select(col(AgencyAuthorization.employer_id), col(AgencyAuthorization.agency_id)).where(
            or_(
                col(AgencyAuthorization.employer_id) == org.id,
                col(AgencyAuthorization.agency_id) == org.id,
            )
        )
    )
    ids = {i for pair in rows.all() for i in pair}
    return ids - {org.id}


async def _registered_by_members(session: AsyncSession, org: Organization) -> set[int]:
    rows = await session.execute(
        select(col(Organization.id))
        .join(OrganizationMember, col(OrganizationMember.user_id) == Organization.created_by)
        .where(col(OrganizationMember.organization_id) == org.id)
    )
    return {i for i in rows.scalars() if i is not None}


async def _visible_ids(session: AsyncSession, actor: Actor) -> set[int] | None:
    """For employer/agency accounts, the ids they may see; None for other roles."""
    if actor.role not in ORG_ROLES:
        return None
    org = await organization_of(session, actor)
    mine: set[int] = set()
    if actor.user_id is not None:
        created = await session.execute(
            select(col(Organization.id)).where(col(Organization.created_by) == actor.user_id)
        )
        mine |= {i for i in created.scalars() if i is not None}
    if org is not None and org.id is not None:
        mine |= (
            {org.id} | await partner_ids(session, org) | await _registered_by_members(session, org)
        )
    return mine


def _sees(actor: Actor, org: Organization, visible: set[int] | None) -> bool:
    if actor.is_system:
        return True
    if visible is not None:
        return org.id in visible
    if actor.role in _REGION_READERS:
        return in_scope(actor, org.region_code)
    return org.status == OrganizationStatus.verified  # brokers


async def get(session: AsyncSession, actor: Actor, organization_id: int) -> Organization:
    require(actor, "organization.view")
    org = await session.get(Organization, organization_id)
    if org is None or not _sees(actor, org, await _visible_ids(session, actor)):
        raise NotFound(f"单位 {organization_id} 不存在", field="organization_id")
    return org


# --- registering -----------------------------------------------------------------------


async def _region(session: AsyncSession, actor: Actor, code: str) -> str:
    region = await session.get(Region, code)
    if region is None or not code.startswith(CITY_CODE) or region.level == RegionLevel.city:
        raise Invalid("region_code", f"区划代码 {code} 不是重庆市的区县、乡镇或村（社区）")
    if not in_scope(actor, code):
        raise Forbidden(f"区划 {code} 不在您的管辖范围内", field="region_code")
    return code


def _phone(raw: str) -> str:
    value = raw.strip().replace(" ", "")
    if _LANDLINE.match(value):
        return value
    return parse_mobile(value, field="contact_phone")


async def register(
    *, session: AsyncSession, actor: Actor, data: OrganizationCreate
) -> Organization:
    """An employer or agency account registers its organisation (and becomes its
    member), an agency registers an employer it recruits for, or an administrator
    registers one. New organisations wait for the district admin's verification."""
    require(actor, "organization.register")
    kind = OrganizationKind(data.kind)
    if actor.role == Role.employer and kind != OrganizationKind.employer:
        raise Invalid("kind", "用人单位账号只能登记用人单位")
    join = False
    if actor.role in ORG_ROLES:
        current = await organization_of(session, actor)
        join = current is None and kind.value == actor.role
        if actor.role == Role.agency and kind == OrganizationKind.agency and current is not None:
            raise Conflict(f"您的账号已属于单位「{current.name}」", field="kind")
        if actor.role == Role.employer and current is not None:
            raise Conflict(f"您的账号已属于单位「{current.name}」", field="kind")
    licence = (data.licence_no or "").strip() or None
    if kind == OrganizationKind.agency and licence is None:
        raise Invalid("licence_no", "人力资源服务机构须填写人力资源服务许可证编号")
    org = Organization(
        kind=kind.value,
        name=data.name.strip(),
        credit_code=parse_credit_code(data.credit_code),
        contact_name=data.contact_name.strip(),
        contact_phone=_phone(data.contact_phone),
        address=data.address.strip(),
        licence_no=licence,
        region_code=await _region(session, actor, data.region_code or actor.region_code),
        created_by=actor.user_id,
    )
    existing = (
        await session.execute(
            select(Organization).where(col(Organization.credit_code) == org.credit_code)
        )
    ).scalar_one_or_none()
    if existing is not None:
        raise Conflict(
            f"统一社会信用代码 {org.credit_code} 已登记（单位编号 {existing.id}）",
            field="credit_code",
        )
    session.add(org)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise Conflict(f"统一社会信用代码 {org.credit_code} 已登记", field="credit_code") from None
    if join and actor.user_id is not None and org.id is not None:
        session.add(OrganizationMember(organization_id=org.id, user_id=actor.user_id))
    await audit.record(
        session=session,
        actor=actor,
        action="organization.register",
        object_type="organization",
        object_id=org.id,
        region_code=org.region_code,
        detail={"kind": org.kind, "joined": join},
    )
    await session.flush()
    return org


async def list_organizations(
    *,
    session: AsyncSession,
    actor: Actor,
    limit: int,
    offset: int,
    status: OrganizationStatus | None = None,
    kind: OrganizationKind | None = None,
    region_code: str | None = None,
    q: str | None = None,
) -> tuple[list[Organization], int]:
    require(actor, "organization.view")
    where: list[ColumnElement[bool]] = []
    visible = await _visible_ids(session, actor)
    if visible is not None:
        where.append(col(Organization.id).in_(sorted(visible) or [0]))
    elif actor.role in _REGION_READERS and not actor.is_system:
        if region_code and not (
            region_code.startswith(actor.region_code) or actor.region_code.startswith(region_code)
        ):
            raise Forbidden(f"区划 {region_code} 不在您的管辖范围内", field="region_code")
        where.append(col(Organization.region_code).startswith(actor.region_code))
    elif not actor.is_system:
        where.append(col(Organization.status) == OrganizationStatus.verified)
    if region_code:
        where.append(col(Organization.region_code).startswith(region_code))
    if status:
        where.append(col(Organization.status) == status)
    if kind:
        where.append(col(Organization.kind) == kind)
    if q:
        where.append(
            or_(
                col(Organization.name).contains(q.strip(), autoescape=True),
                col(Organization.credit_code) == q,
            )
        )
    return await fetch_page(
        session, Organization, where, order_by=col(Organization.id).desc(), limit=limit,
        offset=offset,
    )  # fmt: skip


# --- verification ----------------------------------------------------------------------


async def member_ids(session: AsyncSession, organization_id: int) -> list[int]:
    rows = await session.execute(
        select(col(OrganizationMember.user_id)).where(
            col(OrganizationMember.organization_id) == organization_id
        )
    )
    return list(rows.scalars())


async def verify(
    *, session: AsyncSession, actor: Actor, organization_id: int, data: VerifyRequest
) -> Organization:
    """The district admin confirms the organisation (licence and documents seen) or
    refuses it with a reason. A refused one may be verified later."""
    org = await get(session, actor, organization_id)
    require(actor, "organization.verify", region_code=org.region_code)
    reason = (data.reason or "").strip() or None
    if data.approve:
        if org.status == OrganizationStatus.verified:
            raise Conflict("该单位已核验", field="approve")
    else:
        if org.status != OrganizationStatus.pending:
            raise Conflict(
                f"单位状态为「{STATUS_LABELS[OrganizationStatus(org.status)]}」，不能退回"
            )
        if reason is None:
            raise Invalid("reason", "不通过核验须写明原因")
    now = utcnow()
    org.status = OrganizationStatus.verified if data.approve else OrganizationStatus.rejected
    org.status_reason = reason
    org.verified_by = actor.user_id
    org.verified_at = now if data.approve else None
    org.updated_at = now
    await audit.record(
        session=session,
        actor=actor,
        action="organization.verify" if data.approve else "organization.reject",
        object_type="organization",
        object_id=org.id,
        region_code=org.region_code,
        detail={"reason": reason} if reason else None,
    )
    title = "单位已通过核验，岗位可提交审核" if data.approve else "单位未通过核验"
    for user_id in await member_ids(session, organization_id):
        await inbox.send(
            session=session,
            user_id=user_id,
            title=title,
            body=reason or org.name,
            link=f"/organizations/{org.id}",
        )
    await session.flush()
    return org


# --- members ---------------------------------------------------------------------------


async def add_member(
    *, session: AsyncSession, actor: Actor, organization_id: int, data: MemberAdd
) -> OrganizationMember:
    """A district admin links an employer/agency account to the organisation."""
    org = await get(session, actor, organization_id)
    require(actor, "organization.manage_members", region_code=org.region_code)
    user = await session.get(User, data.user_id)
    if user is None or not in_scope(actor, user.region_code):
        raise NotFound(f"账号 {data.user_id} 不存在", field="user_id")
    if user.role != org.kind:
        raise Invalid(
            "user_id",
            f"账号 {user.username} 的角色不是{'用人单位' if org.kind == OrganizationKind.employer else '人力资源服务机构'}",
        )
    current = (
        await session.execute(
            select(OrganizationMember).where(col(OrganizationMember.user_id) == user.id)
        )
    ).scalar_one_or_none()
    if current is not None:
        if current.organization_id == org.id:
            return current
        raise Conflict(
            f"账号 {user.username} 已属于另一单位（编号 {current.organization_id}）",
            field="user_id",
        )
    member = OrganizationMember(
        organization_id=org.id or 0, user_id=user.id or 0, added_by=actor.user_id
    )
    session.add(member)
    await audit.record(
        session=session,
        actor=actor,
        action="organization.member_add",
        object_type="organization",
        object_id=org.id,
        region_code=org.region_code,
        detail={"user_id": user.id},
    )
    await session.flush()
    return member


async def members(
    *, session: AsyncSession, actor: Actor, organization_id: int
) -> list[MemberPublic]:
    org = await get(session, actor, organization_id)
    if actor.role not in ORG_ROLES and not actor.is_system:
        require(actor, "organization.manage_members", region_code=org.region_code)
    elif not actor.is_system and (await organization_of(session, actor)) != org:
        raise Forbidden("只能查看本单位的账号")
    rows = await session.execute(
        select(OrganizationMember, User)
        .join(User, col(User.id) == OrganizationMember.user_id)
        .where(col(OrganizationMember.organization_id) == organization_id)
        .order_by(col(OrganizationMember.id))
    )
    return [
        MemberPublic(
            organization_id=m.organization_id,
            user_id=m.user_id,
            username=u.username,
            display_name=u.display_name,
            role=u.role,
            created_at=m.created_at,
        )
        for m, u in rows.all()
    ]


# --- agency authorisations -------------------------------------------------------------


async def authorize(
    *, session: AsyncSession, actor: Actor, employer_id: int, data: AuthorizationCreate
) -> AgencyAuthorization:
    """Record an employer's authorisation of an agency: by the employer's own account,
    or by the district admin from the paper 授权委托书."""
    employer = await get(session, actor, employer_id)
    if employer.kind != OrganizationKind.employer:
        raise Invalid("organization_id", "只有用人单位可以授权人力资源服务机构")
    if actor.role in ORG_ROLES:
        mine = await organization_of(session, actor)
        if mine is None or mine.id != employer.id:
            raise Forbidden("只有用人单位本身或区县人力社保局可以登记授权")
    require(
        actor,
        "organization.authorize",
        region_code=employer.region_code if actor.role not in ORG_ROLES else None,
    )
    agency = await session.get(Organization, data.agency_id)
    if agency is None or agency.kind != OrganizationKind.agency:
        raise Invalid("agency_id", f"单位 {data.agency_id} 不是已登记的人力资源服务机构")
    if data.valid_until < data.valid_from:
        raise Invalid("valid_until", "授权截止日期不能早于开始日期")
    grant = AgencyAuthorization(
        employer_id=employer.id or 0,
        agency_id=agency.id or 0,
        document_ref=data.document_ref.strip(),
        valid_from=data.valid_from,
        valid_until=data.valid_until,
        recorded_by=actor.user_id,
    )
    session.add(grant)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise Conflict("同一授权书已登记", field="document_ref") from None
    await audit.record(
        session=session,
        actor=actor,
        action="organization.authorize",
        object_type="organization",
        object_id=employer.id,
        region_code=employer.region_code,
        detail={"agency_id": agency.id, "valid_until": data.valid_until.isoformat()},
    )
    for user_id in await member_ids(session, agency.id or 0):
        await inbox.send(
            session=session,
            user_id=user_id,
            title=f"「{employer.name}」已授权贵机构代为招聘",
            body=f"授权书 {grant.document_ref}，有效期 {grant.valid_from} 至 {grant.valid_until}",
            link=f"/organizations/{employer.id}",
        )
    await session.flush()
    return grant


async def authorizations(
    *, session: AsyncSession, actor: Actor, organization_id: int
) -> list[AgencyAuthorization]:
    org = await get(session, actor, organization_id)
    if actor.role not in ORG_ROLES and not actor.is_system:
        require(actor, "organization.manage_members", region_code=org.region_code)
    rows = await session.execute(
        select(AgencyAuthorization)
        .where(
            or_(
                col(AgencyAuthorization.employer_id) == org.id,
                col(AgencyAuthorization.agency_id) == org.id,
            )
        )
        .order_by(col(AgencyAuthorization.id).desc())
    )
    return list(rows.scalars())


async def valid_authorization(
    session: AsyncSession, *, employer_id: int, agency_id: int, on: date
) -> AgencyAuthorization | None:
    """An unrevoked authorisation of the agency by the employer covering ``on``."""
    return (
        await session.execute(
            select(AgencyAuthorization)
            .where(
                col(AgencyAuthorization.employer_id) == employer_id,
                col(AgencyAuthorization.agency_id) == agency_id,
                col(AgencyAuthorization.revoked_at).is_(None),
                col(AgencyAuthorization.valid_from) <= on,
                col(AgencyAuthorization.valid_until) >= on,
            )
            .order_by(col(AgencyAuthorization.valid_until).desc())
            .limit(1)
        )
    ).scalar_one_or_none()
