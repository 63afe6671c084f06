"""Job pages: employers and agencies post and manage jobs (phone and desktop);
district admins review from a queue with flagged jobs first and the flags explained."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.params import QueryParameter, URLEncodedBody
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace.access import Actor, can
from marketplace.errors import DomainError, Forbidden
from marketplace.jobs import service as jobs
from marketplace.jobs.models import (
    STATUS_LABELS,
    Job,
    JobLine,
    JobPublic,
    JobStatus,
    JobUpdate,
    ReviewRequest,
)
from marketplace.jobs.rules import UNIT_LABELS
from marketplace.organizations import service as orgs
from marketplace.organizations.models import (
    AgencyAuthorization,
    Organization,
    OrganizationKind,
    OrganizationStatus,
)
from marketplace.regions import service as regions
from marketplace.regions.models import CITY_CODE, Region, RegionLevel
from matching.taxonomy import load_taxonomy
from web.auth import requires_login
from web.deps import CurrentActor, Db, JobOccupationsDep, Paging, RowId
from web.pages.base import field_errors, is_htmx, refuse_in_form, render
from web.pages.job_forms import OUTSIDE, JobForm, form_of, input_errors, to_create, to_update
from web.pages.worker_forms import fen_to_yuan

STATUS_TAGS = {
    "draft": "",
    "pending_review": "tag-warn",
    "published": "tag-ok",
    "filled": "",
    "closed": "tag-off",
    "expired": "tag-off",
}


class ReviewForm(BaseModel):
    decision: str = ""  # approve | reject
    reason: str = ""


class StatusForm(BaseModel):
    status: str = ""
    reason: str = ""


def occupation_name(key: str | None) -> str:
    found = load_taxonomy().get(key) if key else None
    return found.name if found else ""


def wage_text(job: JobPublic | JobLine | Job) -> str:
    low, high = fen_to_yuan(job.wage_min_fen), fen_to_yuan(job.wage_max_fen)
    amount = low if low == high else f"{low}–{high}"
    return f"{amount} {UNIT_LABELS.get(job.wage_unit, '')}"


LABELS: dict[str, Any] = {
    "JOB_STATUS": STATUS_LABELS,
    "STATUS_TAGS": STATUS_TAGS,
    "UNIT_LABELS": UNIT_LABELS,
    "yuan": fen_to_yuan,
    "wage_text": wage_text,
    "occupation_name": occupation_name,
}


async def _districts(db: AsyncSession) -> list[tuple[str, str]]:
    rows = await db.execute(
        select(col(Region.code), col(Region.name))
        .where(col(Region.level) == RegionLevel.district)
        .order_by(col(Region.code))
    )
    return [(code, name) for code, name in rows.all()]


async def _place_names(db: AsyncSession, codes: set[str]) -> dict[str, str]:
    return await regions.names(session=db, codes={c for c in codes if c.startswith(CITY_CODE)})


async def _org_names(db: AsyncSession, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = await db.execute(
        select(col(Organization.id), col(Organization.name)).where(col(Organization.id).in_(ids))
    )
    return {i: n for i, n in rows.all() if i is not None}


async def _employer_choices(db: AsyncSession, mine: Organization) -> list[tuple[int, str]]:
    """Whom the account may post for: its own organisation, and for an agency the
    employers that authorised it (valid today)."""
    choices = [(mine.id or 0, mine.name)]
    if mine.kind == OrganizationKind.agency:
        today = jobs.today_local()
        rows = await db.execute(
            select(col(Organization.id), col(Organization.name))
            .join(AgencyAuthorization, col(AgencyAuthorization.employer_id) == Organization.id)
            .where(
                col(AgencyAuthorization.agency_id) == mine.id,
                col(AgencyAuthorization.revoked_at).is_(None),
                col(AgencyAuthorization.valid_from) <= today,
                col(AgencyAuthorization.valid_until) >= today,
            )
            .distinct()
        )
        choices += [(i, n) for i, n in rows.all() if i is not None]
    return choices


async def _show(
    request: Request[Any, Any, Any], db: AsyncSession, name: str, **context: Any
) -> Template:
    return await render(request, db, name, **LABELS, **context)


# --- lists ----------------------------------------------------------------------------


@get("/jobs", guards=[requires_login], include_in_schema=False)
async def jobs_page(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    page: Paging,
    view: Annotated[str | None, QueryParameter(max_length=16)] = None,
    status: Annotated[str | None, QueryParameter(max_length=16)] = None,
) -> Template:
    """Organisations: their jobs. Reviewers: the queue (flagged first) or all jobs in
    their district. Everyone else: published jobs."""
    reviewer = can(actor, "job.review")
    mine = await orgs.organization_of(db, actor)
    queue = reviewer and view != "all"
    state = JobStatus(status) if status in STATUS_LABELS and not queue else None
    if not reviewer and mine is None and state is None:
        state = JobStatus.published
    items, total = await jobs.list_lines(
        session=db,
        actor=actor,
        limit=page.limit,
        offset=page.offset,
        status=state,
        queue=queue,
        region_code=actor.region_code if reviewer and not queue else None,
        mine=mine,
    )
    query = {k: v for k, v in (("view", view), ("status", status)) if v}
    # An employer's jobs are its own: its name is known (an agency's may be others').
    known = {mine.id: mine.name} if mine is not None and mine.id is not None else {}
    return await _show(
        request,
        db,
        "jobs/_results.html" if is_htmx(request) else "jobs/list.html",
        items=items,
        total=total,
        page=page,
        query=query,
        queue=queue,
        reviewer=reviewer,
        mine=mine,
        status=status or "",
        places=await _place_names(db, {j.work_region_code for j in items}),
        org_names=known | await _org_names(db, {j.organization_id for j in items} - known.keys()),
        may_post=can(actor, "job.post"),
    )


# --- add and edit ---------------------------------------------------------------------


async def _form_page(
    request: Request[Any, Any, Any],
    db: AsyncSession,
    actor: Actor,
    form: JobForm,
    errors: dict[str, str],
    *,
    job: JobPublic | None = None,
    status_code: int = 200,
) -> Template:
    mine = await orgs.require_organization(db, actor)
    return await _show(
        request,
        db,
        "jobs/form.html",
        status_code=status_code,
        form=form,
        errors=input_errors(errors),
        job=job,
        mine=mine,
        employers=await _employer_choices(db, mine),
        districts=await _districts(db),
        OUTSIDE=OUTSIDE,
        published=job is not None and job.status == JobStatus.published,
    )


@get("/jobs/new", guards=[requires_login], include_in_schema=False)
async def job_new(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor
) -> Response[Any] | Template:
    if not can(actor, "job.post"):
        raise Forbidden("您的角色不能发布岗位")
    mine = await orgs.organization_of(db, actor)
    if mine is None:
        return Redirect("/organizations/new?first=1", status_code=HTTP_303_SEE_OTHER)
    region = mine.region_code[:6]
    form = JobForm(organization_id=str(mine.id), work_district=region)
    return await _form_page(request, db, actor, form, {})


@post("/jobs", guards=[requires_login], include_in_schema=False)
async def job_create(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    job_occupations: JobOccupationsDep,
    data: URLEncodedBody[JobForm],
) -> Response[Any] | Template:
    if not data.organization_id.strip():  # one organisation: the form has no choice
        mine = await orgs.require_organization(db, actor)
        data.organization_id = str(mine.id)
    try:
        job = await jobs.create(
            session=db, actor=actor, data=to_create(data), occupations=job_occupations
        )
    except ValidationError as exc:
        errors, status = field_errors(exc), 422
    except DomainError as exc:
        errors, status = {exc.field or "_": exc.message}, exc.status
    else:
        return Redirect(f"/jobs/{job.id}?saved=created", status_code=HTTP_303_SEE_OTHER)
    await refuse_in_form(request, db, status)
    return await _form_page(request, db, actor, data, errors, status_code=status)


@get("/jobs/{job_id:int}/edit", guards=[requires_login], include_in_schema=False)
async def job_edit(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor, job_id: RowId
) -> Template:
    job = jobs.to_public(await jobs.get(db, actor, job_id))
    await _require_member(db, actor, job)
    districts = await _districts(db)
    return await _form_page(
        request, db, actor, form_of(job, {c for c, _ in districts}), {}, job=job
    )


async def _require_member(db: AsyncSession, actor: Actor, job: JobPublic | Job) -> Organization:
    mine = await orgs.organization_of(db, actor)
    if mine is None or mine.id not in (job.organization_id, job.agency_id):
        raise Forbidden("只能修改本单位的岗位")
    return mine


@post("/jobs/{job_id:int}", guards=[requires_login], include_in_schema=False)
async def job_update(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    job_occupations: JobOccupationsDep,
    job_id: RowId,
    data: URLEncodedBody[JobForm],
) -> Response[Any] | Template:
    current = jobs.to_public(await jobs.get(db, actor, job_id))
    try:
        await jobs.update(
            session=db,
            actor=actor,
            job_id=job_id,
            data=to_update(data, current.status == JobStatus.published),
            occupations=job_occupations,
        )
    except ValidationError as exc:
        errors, status = field_errors(exc), 422
    except DomainError as exc:
        errors, status = {exc.field or "_": exc.message}, exc.status
    else:
        return Redirect(f"/jobs/{job_id}?saved=updated", status_code=HTTP_303_SEE_OTHER)
    await refuse_in_form(request, db, status)
    current = jobs.to_public(await jobs.get(db, actor, job_id))
    return await _form_page(request, db, actor, data, errors, job=current, status_code=status)


# --- one job ------------------------------------------------------------------------

NOTICES = {
    "created": "已保存为草稿。检查无误后请提交审核。",
    "updated": "已保存。",
    "submitted": "已提交，等待区县人力社保局审核。",
    "published": "已审核通过并发布。",
    "rejected": "已退回给发布单位修改。",
    "closed": "岗位已关闭。",
    "filled": "岗位已标为招满。",
}


async def _job_page(
    request: Request[Any, Any, Any],
    db: AsyncSession,
    actor: Actor,
    job_id: int,
    *,
    notice: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Template:
    row = await jobs.get(db, actor, job_id)
    job = jobs.to_public(row)
    mine = await orgs.organization_of(db, actor)
    member = mine is not None and mine.id in (job.organization_id, job.agency_id)
    employer = await db.get(Organization, job.organization_id)
    agency = await db.get(Organization, job.agency_id) if job.agency_id else None
    may_review = job.status == JobStatus.pending_review and can(
        actor, "job.review", region_code=job.review_district_code
    )
    return await _show(
        request,
        db,
        "jobs/detail.html",
        status_code=status_code,
        job=job,
        employer=employer,
        agency=agency,
        member=member,
        may_review=may_review,
        blocking=[f for f in job.flags if f.blocking],
        place=(await _place_names(db, {job.work_region_code})).get(job.work_region_code, ""),
        notice=notice,
        error=error,
        employer_unverified=employer is not None and employer.status != OrganizationStatus.verified,
    )


@get("/jobs/{job_id:int}", guards=[requires_login], include_in_schema=False)
async def job_page(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    job_id: RowId,
    saved: Annotated[str | None, QueryParameter(max_length=16)] = None,
) -> Template:
    return await _job_page(request, db, actor, job_id, notice=NOTICES.get(saved or ""))


async def _act(
    request: Request[Any, Any, Any],
    db: AsyncSession,
    actor: Actor,
    job_id: int,
    action: Any,
    done: str,
) -> Response[Any] | Template:
    """Run one state change; a refusal shows the job again with the reason on top."""
    try:
        await action()
    except DomainError as exc:
        await refuse_in_form(request, db, exc)
        return await _job_page(
            request, db, actor, job_id, error=exc.message, status_code=exc.status
        )
    return Redirect(f"/jobs/{job_id}?saved={done}", status_code=HTTP_303_SEE_OTHER)


@post("/jobs/{job_id:int}/submit", guards=[requires_login], include_in_schema=False)
async def job_submit(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor, job_id: RowId
) -> Response[Any] | Template:
    async def action() -> None:
        await jobs.submit(session=db, actor=actor, job_id=job_id, today=jobs.today_local())

    return await _act(request, db, actor, job_id, action, "submitted")


@post("/jobs/{job_id:int}/review", guards=[requires_login], include_in_schema=False)
async def job_review(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    job_id: RowId,
    data: URLEncodedBody[ReviewForm],
) -> Response[Any] | Template:
    approve = data.decision == "approve"

    async def action() -> None:
        await jobs.review(
            session=db,
            actor=actor,
            job_id=job_id,
            data=ReviewRequest(approve=approve, reason=data.reason.strip()[:500] or None),
            today=jobs.today_local(),
        )

    return await _act(request, db, actor, job_id, action, "published" if approve else "rejected")


@post("/jobs/{job_id:int}/status", guards=[requires_login], include_in_schema=False)
async def job_status(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    job_occupations: JobOccupationsDep,
    job_id: RowId,
    data: URLEncodedBody[StatusForm],
) -> Response[Any] | Template:
    new = data.status if data.status in ("closed", "filled") else "closed"

    async def action() -> None:
        await jobs.update(
            session=db,
            actor=actor,
            job_id=job_id,
            data=JobUpdate.model_validate(
                {"status": new, "reason": data.reason.strip()[:500] or None}
            ),
            occupations=job_occupations,
        )

    return await _act(request, db, actor, job_id, action, new)
