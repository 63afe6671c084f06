"""What can be done with jobs: draft, edit, submit for review, review, close, fill,
expire. Flags come from ``rules``; who sees what from ``scope`` (docs/jobs.md).

States: draft → pending_review → published → filled | closed | expired. A rejected
job returns to draft with the reviewer's reason. Only a verified employer (and, for an
agency's posting, a verified agency holding the employer's authorisation) gets a job
to review; a job with a blocking flag cannot be published.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Executable, bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from marketplace import audit
from marketplace.access import SYSTEM, Actor, Role, require
from marketplace.accounts.models import User
from marketplace.clock import local, utcnow
from marketplace.db import unit_of_work
from marketplace.errors import Conflict, Forbidden, Invalid, NotFound
from marketplace.events import emit
from marketplace.jobs import rules, scope
from marketplace.jobs.models import (
    LINE_COLUMNS,
    LIVE_STATUSES,
    STATUS_LABELS,
    FlagPublic,
    Job,
    JobCreate,
    JobLine,
    JobPublic,
    JobStatus,
    JobUpdate,
    ReviewRequest,
)
from marketplace.notifications import service as inbox
from marketplace.organizations import service as orgs
from marketplace.organizations.models import Organization, OrganizationKind, OrganizationStatus
from marketplace.regions.models import CITY_CODE, Region, RegionLevel
from marketplace.workers.identity import PROVINCES

EVENT = "job.changed"
# What a published job may still change without a new review.
LOGISTICS_FIELDS = frozenset({"headcount", "ends_on", "contact", "pay_day"})
_CITY_ELSEWHERE = re.compile(r"^\d{6}$")
# Columns that cannot be cleared with null in a PATCH.
_REQUIRED = frozenset(
    {
        "headcount", "wage_min_fen", "wage_max_fen", "wage_unit", "starts_on", "title",
        "work_region_code", "board", "lodging", "social_insurance",
    }
)  # fmt: skip


class JobOccupations(Protocol):
    """Maps job titles to occupations of the taxonomy; ``web`` wires the matching
    package's normaliser in. Codes are the taxonomy keys the worker register uses."""

    def canonical(self, code: str) -> str | None:
        """The key for a key or national code, None when the taxonomy lacks it."""
        ...

    def for_title(self, title: str) -> str | None:
        """The one occupation a title names, or None (kept as text, never forced)."""
        ...


def today_local() -> date:
    return local(utcnow()).date()


def to_public(job: Job) -> JobPublic:
    data = job.model_dump()
    data["flags"] = [FlagPublic.model_validate(flag) for flag in job.flags]
    return JobPublic.model_validate(data)


# --- checking input --------------------------------------------------------------------


async def _location(session: AsyncSession, code: str, text: str | None) -> str:
    code = code.strip()
    if code.startswith(CITY_CODE):
        region = await session.get(Region, code)
        if region is None or region.level == RegionLevel.city:
            raise Invalid(
                "work_region_code", f"工作地点区划代码 {code} 不是重庆市的区县、乡镇或村（社区）"
            )
        return code
    if not _CITY_ELSEWHERE.match(code) or code[:2] not in PROVINCES or code[2:4] == "00":
        raise Invalid(
            "work_region_code",
            f"工作地点 {code} 无效：重庆市内填写区划代码，市外填写城市的 6 位行政区划代码（如深圳 440300）",
        )
    if not (text or "").strip():
        raise Invalid("work_location_text", "重庆市外的岗位须填写省、市（如 广东省深圳市）")
    return code


def _clean_list(values: list[str]) -> list[str]:
    cleaned: list[str] = []
    for value in values:
        item = value.strip()
        if len(item) > 32:
            raise Invalid("certificates_required", f"证书名称「{item[:10]}…」过长（最多 32 字）")
        if item and item not in cleaned:
            cleaned.append(item)
    return cleaned


def _check_whole(job: Job) -> None:
    if job.wage_min_fen > job.wage_max_fen:
        raise Invalid("wage_max_fen", "工资上限不能低于下限")
    if job.wage_max_fen == 0:
        raise Invalid("wage_max_fen", "请填写工资")
    if job.ends_on is not None and job.ends_on < job.starts_on:
        raise Invalid("ends_on", "结束日期不能早于开始日期")
    if job.fee_fixed_fen is not None and job.fee_share_bp is not None:
        raise Invalid("fee_share_bp", "服务费按固定金额或按首月工资比例，二者只能选一")
    rules.check_ages(job.age_min, job.age_max)


def _not_past(job: Job) -> None:
    if job.ends_on is not None and job.ends_on < today_local():
        raise Invalid("ends_on", f"结束日期 {job.ends_on} 已过")


def _occupation(occupations: JobOccupations, code: str | None, title: str) -> str | None:
    if code:
        key = occupations.canonical(code.strip())
        if key is None:
            raise Invalid("occupation_code", f"职业代码 {code} 不在职业目录中")
        return key
    return occupations.for_title(title)


async def _apply(
    session: AsyncSession, job: Job, values: dict[str, Any], occupations: JobOccupations
) -> None:
    for field in ("title", "description", "contact", "address", "work_location_text"):
        if field in values and isinstance(values[field], str):
            values[field] = values[field].strip() or (None if field != "description" else "")
    if "title" in values and not values["title"]:
        raise Invalid("title", "岗位名称不能为空")
    if "certificates_required" in values:
        values["certificates_required"] = _clean_list(values["certificates_required"] or [])
    if "wage_unit" in values and values["wage_unit"] is not None:
        values["wage_unit"] = str(values["wage_unit"].value)
    for field, value in values.items():
        if value is None and field == "description":
            value = ""
        elif value is None and field in _REQUIRED:
            raise Invalid(field, "此项不能为空")
        setattr(job, field, value)
    if "title" in values or "occupation_code" in values:
        job.occupation_code = _occupation(occupations, values.get("occupation_code"), job.title)
    job.work_region_code = await _location(session, job.work_region_code, job.work_location_text)
    _check_whole(job)


# --- who posts -------------------------------------------------------------------------


async def _poster(
    session: AsyncSession, actor: Actor, organization_id: int
) -> tuple[Organization, Organization | None]:
    """The employer the job is for and the agency posting it (None for the employer's
    own posting)."""
    require(actor, "job.post")
    mine = await orgs.require_organization(session, actor)
    if mine.id == organization_id:
        return mine, None
    if mine.kind != OrganizationKind.agency:
        raise Forbidden("只能为本单位发布岗位", field="organization_id")
    employer = await session.get(Organization, organization_id)
    if employer is None or employer.kind != OrganizationKind.employer:
        raise Invalid("organization_id", f"单位 {organization_id} 不是已登记的用人单位")
    return employer, mine


async def _review_district(session: AsyncSession, job: Job, employer: Organization) -> str:
    if job.work_region_code.startswith(CITY_CODE):
        return job.work_region_code[:6]
    return employer.region_code[:6]


async def _live_postings(session: AsyncSession, job: Job) -> list[rules.Posting]:
    rows = await session.execute(
        select(col(Job.id), col(Job.title), col(Job.description), col(Job.work_region_code)).where(
            col(Job.organization_id) == job.organization_id,
            col(Job.status).in_([s.value for s in LIVE_STATUSES]),
            col(Job.id) != (job.id or 0),
        )
    )
    return [
        rules.Posting(id=i or 0, title=t, description=d or "", work_region_code=w)
        for i, t, d, w in rows.all()
    ]


async def refresh_flags(session: AsyncSession, job: Job) -> list[dict[str, Any]]:
    flags = rules.all_flags(
        title=job.title,
        description=job.description,
        certificates=job.certificates_required,
        wage_min_fen=job.wage_min_fen,
        wage_max_fen=job.wage_max_fen,
        wage_unit=job.wage_unit,
        work_region_code=job.work_region_code,
        age_max=job.age_max,
        duplicates_of=rules.Posting(
            id=job.id or 0,
            title=job.title,
            description=job.description,
            work_region_code=job.work_region_code,
        ),
        live_postings=await _live_postings(session, job),
    )
    job.flags = [flag.as_dict() for flag in flags]
    job.flagged = bool(flags)
    return job.flags


async def _changed(
    session: AsyncSession, actor: Actor, job: Job, action: str, detail: dict[str, Any] | None
) -> None:
    await audit.record(
        session=session,
        actor=actor,
        action=f"job.{action}",
        object_type="job",
        object_id=job.id,
        region_code=job.review_district_code,
        detail=detail,
    )
    await emit(session, EVENT, {"job_id": job.id, "action": _EVENT_ACTIONS.get(action, "update")})
    await session.flush()


# audit action -> job.changed action (docs/events.md)
_EVENT_ACTIONS = {
    "create": "create",
    "publish": "publish",
    "close": "close",
    "fill": "fill",
    "expire": "expire",
}


# --- reading ---------------------------------------------------------------------------


async def get(session: AsyncSession, actor: Actor, job_id: int) -> Job:
    require(actor, "job.view")
    job = await session.get(Job, job_id)
    org = await orgs.organization_of(session, actor)
    if job is None or not scope.sees(actor, job, org.id if org else None):
        raise NotFound(f"岗位 {job_id} 不存在", field="job_id")
    return job


async def list_jobs(
    *,
    session: AsyncSession,
    actor: Actor,
    limit: int,
    offset: int,
    status: JobStatus | None = None,
    organization_id: int | None = None,
    region_code: str | None = None,
    queue: bool = False,
    mine: Organization | None = None,
) -> tuple[list[Job], int]:
    """Organisation accounts list their own jobs; everyone else the jobs they may see.
    ``queue`` is the reviewer's list: waiting for review in their district, flagged
    first, oldest first. ``mine``: the actor's organisation, when the caller has
    looked it up already (``organizations.organization_of``)."""
    if _own_list(actor, queue=queue, filtered=bool(status or organization_id or region_code)):
        total, result = await _own_jobs(session, actor, mine, _OWN_ROWS, limit, offset)
        return ([], 0) if result is None else (list(result.scalars()), total)
    where, order = await _listing(
        session,
        actor,
        status=status,
        organization_id=organization_id,
        region_code=region_code,
        queue=queue,
        mine=mine,
    )
    total = await _count(session, where)
    rows = await session.execute(
        select(Job).where(*where).order_by(*order).limit(limit).offset(offset)
    )
    return list(rows.scalars()), total


async def list_lines(
    *,
    session: AsyncSession,
    actor: Actor,
    limit: int,
    offset: int,
    status: JobStatus | None = None,
    region_code: str | None = None,
    queue: bool = False,
    mine: Organization | None = None,
) -> tuple[list[JobLine], int]:
    """``list_jobs`` for the jobs page: only what its rows show (no records built)."""
    if _own_list(actor, queue=queue, filtered=bool(status or region_code)):
        total, result = await _own_jobs(session, actor, mine, _OWN_LINES, limit, offset)
        return ([], 0) if result is None else ([JobLine(*row) for row in result.all()], total)
    where, order = await _listing(
        session, actor, status=status, region_code=region_code, queue=queue, mine=mine
    )
    total = await _count(session, where)
    rows = await session.execute(
        select(*LINE_COLUMNS).where(*where).order_by(*order).limit(limit).offset(offset)
    )
    return [JobLine(*row) for row in rows.all()], total


# An organisation's own jobs, unfiltered, are what its accounts open on most visits:
# these statements are built once (docs/operations.md, "Statements built once"). The
# conditions and the order are ``_listing``'s for an organisation's account.
_OWN_WHERE = or_(
    col(Job.organization_id) == bindparam("org_id"), col(Job.agency_id) == bindparam("org_id")
)
_OWN_COUNT = select(func.count()).select_from(Job).where(_OWN_WHERE)
_OWN_ORDER = (col(Job.id) + 0).desc()
_OWN_ROWS = (
    select(Job)
    .where(_OWN_WHERE)
    .order_by(_OWN_ORDER)
    .limit(bindparam("limit"))
    .offset(bindparam("offset"))
)
_OWN_LINES = (
    select(*LINE_COLUMNS)
    .where(_OWN_WHERE)
    .order_by(_OWN_ORDER)
    .limit(bindparam("limit"))
    .offset(bindparam("offset"))
)


def _own_list(actor: Actor, *, queue: bool, filtered: bool) -> bool:
    """Whether a listing is an organisation account's own jobs without filters."""
    return not (queue or filtered or actor.is_system) and actor.role in orgs.ORG_ROLES


async def _own_jobs(
    session: AsyncSession,
    actor: Actor,
    mine: Organization | None,
    page: Executable,
    limit: int,
    offset: int,
) -> tuple[int, Any]:
    """How many jobs the actor's organisation has, and one page of ``page``'s rows;
    ``(0, None)`` for an account without an organisation (it has no jobs)."""
    require(actor, "job.view")
    org = mine or await orgs.organization_of(session, actor)
    if org is None:
        return 0, None
    params = {"org_id": org.id, "limit": limit, "offset": offset}
    total = (await session.execute(_OWN_COUNT, params)).scalar_one()
    return int(total), await session.execute(page, params)


async def _listing(
    session: AsyncSession,
    actor: Actor,
    *,
    status: JobStatus | None = None,
    organization_id: int | None = None,
    region_code: str | None = None,
    queue: bool = False,
    mine: Organization | None = None,
) -> tuple[list[ColumnElement[bool]], list[Any]]:
    """The conditions and the order of a listing (see ``list_jobs``)."""
    require(actor, "job.view")
    org = mine or await orgs.organization_of(session, actor)
    where: list[ColumnElement[bool]] = []
    order: list[Any] = [col(Job.id).desc()]
    if queue:
        require(actor, "job.review")
        where += [
            col(Job.status) == JobStatus.pending_review,
            col(Job.review_district_code).startswith(actor.region_code),
        ]
        order = [col(Job.flagged).desc(), col(Job.submitted_at), col(Job.id)]
    elif not actor.is_system:
        own_only = actor.role in orgs.ORG_ROLES
        where.append(scope.visible_where(actor, org.id if org else None, own_only=own_only))
        if own_only:
            # ``id + 0``: an organisation's few jobs are found by its two indexes and
            # sorted; ordered by the bare key, SQLite walks every job newest first
            # testing each (as the worker register, marketplace/workers/service.py).
            order = [(col(Job.id) + 0).desc()]
    if status:
        where.append(col(Job.status) == status)
    if organization_id:
        where.append(col(Job.organization_id) == organization_id)
    if region_code:
        where.append(col(Job.work_region_code).startswith(region_code))
    return where, order


async def _count(session: AsyncSession, where: list[ColumnElement[bool]]) -> int:
    total = (
        await session.execute(select(func.count()).select_from(Job).where(*where))
    ).scalar_one()
    return int(total)


# --- writing ---------------------------------------------------------------------------


async def create(
    *, session: AsyncSession, actor: Actor, data: JobCreate, occupations: JobOccupations
) -> Job:
    """A draft. Unverified organisations may draft; submitting needs verification."""
    employer, agency = await _poster(session, actor, data.organization_id)
    values = data.model_dump(exclude={"organization_id"})
    job = Job(
        organization_id=employer.id or 0,
        agency_id=agency.id if agency else None,
        title=data.title,
        headcount=data.headcount,
        wage_min_fen=data.wage_min_fen,
        wage_max_fen=data.wage_max_fen,
        wage_unit=data.wage_unit.value,
        work_region_code=data.work_region_code,
        starts_on=data.starts_on,
        review_district_code="",
        created_by=actor.user_id,
    )
    await _apply(session, job, values, occupations)
    _not_past(job)
    job.review_district_code = await _review_district(session, job, employer)
    session.add(job)
    await session.flush()
    await refresh_flags(session, job)
    await _changed(session, actor, job, "create", {"agency_id": job.agency_id})
    return job


async def _load_for_edit(
    session: AsyncSession, actor: Actor, job_id: int
) -> tuple[Job, Organization]:
    job = await get(session, actor, job_id)
    require(actor, "job.post")
    mine = await orgs.organization_of(session, actor)
    if mine is None or mine.id not in (job.organization_id, job.agency_id):
        raise Forbidden("只能修改本单位的岗位", field="job_id")
    return job, mine


async def update(
    *,
    session: AsyncSession,
    actor: Actor,
    job_id: int,
    data: JobUpdate,
    occupations: JobOccupations,
) -> Job:
    job, _ = await _load_for_edit(session, actor, job_id)
    sent = data.model_dump(exclude_unset=True)
    new_status = sent.pop("status", None)
    reason = (sent.pop("reason", None) or "").strip() or None
    if sent:
        status = JobStatus(job.status)
        if status == JobStatus.published and not set(sent) <= LOGISTICS_FIELDS:
            extra = "、".join(sorted(set(sent) - LOGISTICS_FIELDS))
            raise Conflict(
                f"招聘中的岗位只能修改人数、结束日期、联系方式和发薪日（{extra} 需关闭后重新发布）",
                field=sorted(set(sent) - LOGISTICS_FIELDS)[0],
            )
        if status not in (JobStatus.draft, JobStatus.published):
            raise Conflict(f"岗位状态为「{STATUS_LABELS[status]}」，不能修改")
        await _apply(session, job, sent, occupations)
        if "ends_on" in sent:
            _not_past(job)
        if job.work_region_code and "work_region_code" in sent:
            employer = await session.get(Organization, job.organization_id)
            assert employer is not None
            job.review_district_code = await _review_district(session, job, employer)
        await refresh_flags(session, job)
        job.updated_at = utcnow()
        await _changed(session, actor, job, "update", {"fields": sorted(sent)})
    if new_status is not None:
        await _end(session, actor, job, JobStatus(new_status), reason)
    return job


async def _end(
    session: AsyncSession, actor: Actor, job: Job, status: JobStatus, reason: str | None
) -> None:
    allowed = {
        JobStatus.filled: {JobStatus.published},
        JobStatus.closed: {JobStatus.draft, JobStatus.pending_review, JobStatus.published},
    }[status]
    if job.status not in allowed:
        raise Conflict(
            f"岗位状态为「{STATUS_LABELS[JobStatus(job.status)]}」，不能改为「{STATUS_LABELS[status]}」",
            field="status",
        )
    job.status = status
    job.status_reason = reason
    job.closed_at = job.updated_at = utcnow()
    await _changed(session, actor, job, "fill" if status == JobStatus.filled else "close", None)


def _require_verified(org: Organization, field: str = "organization_id") -> None:
    if org.status != OrganizationStatus.verified:
        raise Conflict(
            f"单位「{org.name}」尚未通过区县人力社保局核验，岗位只能保存为草稿", field=field
        )


async def _require_standing(session: AsyncSession, job: Job, today: date) -> None:
    employer = await session.get(Organization, job.organization_id)
    assert employer is not None
    _require_verified(employer)
    if job.agency_id is not None:
        agency = await session.get(Organization, job.agency_id)
        assert agency is not None
        _require_verified(agency)
        grant = await orgs.valid_authorization(
            session, employer_id=job.organization_id, agency_id=job.agency_id, on=today
        )
        if grant is None:
            raise Conflict(
                f"没有「{employer.name}」对「{agency.name}」在 {today} 有效的招聘授权，不能代为发布",
                field="organization_id",
            )
    if job.ends_on is not None and job.ends_on < today:
        raise Conflict(f"岗位结束日期 {job.ends_on} 已过", field="ends_on")


async def submit(*, session: AsyncSession, actor: Actor, job_id: int, today: date) -> Job:
    job, _ = await _load_for_edit(session, actor, job_id)
    if job.status != JobStatus.draft:
        raise Conflict(f"岗位状态为「{STATUS_LABELS[JobStatus(job.status)]}」，不能提交审核")
    await _require_standing(session, job, today)
    await refresh_flags(session, job)
    job.status = JobStatus.pending_review
    job.status_reason = None
    job.submitted_at = job.updated_at = utcnow()
    await _changed(session, actor, job, "submit", {"flags": [f["code"] for f in job.flags]})
    reviewers = await session.execute(
        select(col(User.id)).where(
            col(User.role) == Role.district_admin,
            col(User.region_code) == job.review_district_code,
            col(User.is_active).is_(True),
        )
    )
    for user_id in reviewers.scalars():
        if user_id is not None:
            await inbox.send(
                session=session,
                user_id=user_id,
                title=f"新岗位待审核：{job.title}" + ("（有提示）" if job.flagged else ""),
                link=f"/jobs/{job.id}",
            )
    return job


async def review(
    *, session: AsyncSession, actor: Actor, job_id: int, data: ReviewRequest, today: date
) -> Job:
    job = await get(session, actor, job_id)
    require(actor, "job.review", region_code=job.review_district_code)
    if job.status != JobStatus.pending_review:
        raise Conflict(f"岗位状态为「{STATUS_LABELS[JobStatus(job.status)]}」，不在待审核中")
    reason = (data.reason or "").strip() or None
    now = utcnow()
    if data.approve:
        flags = rules.blocking(await refresh_flags(session, job))
        if flags:
            raise Conflict(
                "岗位含有违法内容，不能发布：" + "；".join(flag["message"] for flag in flags),
                field="flags",
            )
        await _require_standing(session, job, today)
        job.status = JobStatus.published
        job.published_at = now
        job.status_reason = None
    else:
        if reason is None:
            raise Invalid("reason", "退回岗位须写明原因")
        job.status = JobStatus.draft
        job.status_reason = reason
    job.reviewed_by = actor.user_id
    job.reviewed_at = job.updated_at = now
    await _changed(session, actor, job, "publish" if data.approve else "reject", {"reason": reason})
    title = f"岗位已发布：{job.title}" if data.approve else f"岗位被退回：{job.title}"
    for org_id in {job.organization_id, job.agency_id} - {None}:
        for user_id in await orgs.member_ids(session, org_id or 0):
            await inbox.send(
                session=session,
                user_id=user_id,
                title=title,
                body=reason or "",
                link=f"/jobs/{job.id}",
            )
    return job


async def expire_due(session: AsyncSession, today: date) -> int:
    """Jobs whose end date has passed (``ends_on < today``: the end date is the last
    working day) expire. Idempotent: a second run finds nothing to do."""
    rows = await session.execute(
        select(Job)
        .where(
            col(Job.status).in_([JobStatus.published, JobStatus.pending_review]),
            col(Job.ends_on) < today,
        )
        .order_by(col(Job.id))
        .with_for_update(skip_locked=True)
    )
    jobs = list(rows.scalars())
    now = utcnow()
    for job in jobs:
        job.status = JobStatus.expired
        job.closed_at = job.updated_at = now
        await emit(session, EVENT, {"job_id": job.id, "action": "expire"})
    if jobs:
        await audit.record(
            session=session,
            actor=SYSTEM,
            action="job.expire",
            object_type="job",
            detail={"count": len(jobs), "today": today.isoformat()},
        )
    await session.flush()
    return len(jobs)


class DailyExpiry:
    """Runs ``expire_due`` at most once per local day from a loop that ticks often
    (the outbox worker, the in-process outbox loop). A missed day is caught up on the
    next tick, since ``expire_due`` takes every job past its end date."""

    def __init__(self) -> None:
        self.done_for: date | None = None

    async def tick(self, factory: async_sessionmaker[AsyncSession]) -> int:
        today = today_local()
        if self.done_for == today:
            return 0
        async with unit_of_work(factory) as session:
            count = await expire_due(session, today)
        self.done_for = today
        return count
