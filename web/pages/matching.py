"""Matching pages (phone first): a broker's jobs for a worker and workers for a job with
reasons, recommending in two taps; the employer's recommended candidates with
shortlist/reject/hire; the broker's onboarding and first-wage report (docs/matching.md)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from urllib.parse import quote

from litestar import Request, get, post
from litestar.params import QueryParameter, URLEncodedBody
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import select
from sqlmodel import col

from marketplace.access import Actor, Role, can
from marketplace.clock import local, utcnow
from marketplace.errors import DomainError, Invalid
from marketplace.jobs.models import Job, JobStatus
from marketplace.placements import cards, followup, queries, service
from marketplace.placements.models import (
    STATUS_LABELS,
    RecommendationCreate,
    StatusChange,
    WageReportCreate,
)
from marketplace.placements.service import organization_of
from marketplace.workers import scope
from marketplace.workers.models import Worker
from matching import matches
from web.auth import requires_login
from web.deps import Cipher, CurrentActor, Db, RowId
from web.pages.base import field_errors, refuse_in_form, render

COMPONENT_LABELS = {
    "occupation": "工种",
    "distance": "距离",
    "wage": "工资",
    "availability": "到岗",
    "certificates": "证书",
    "freshness": "信息",
}
EMPLOYER_ROLES = (Role.employer, Role.agency)
Message = Annotated[str | None, QueryParameter(max_length=300)]


def _today() -> date:
    return local(utcnow()).date()


def _back(path: str, *, ok: str | None = None, error: str | None = None) -> Redirect:
    """Back to a matching page with a notice; only our own pages (no open redirect)."""
    target = path if path.startswith("/matching") and "//" not in path else "/matching"
    sep = "&" if "?" in target else "?"
    if ok:
        target += f"{sep}ok={quote(ok)}"
    elif error:
        target += f"{sep}error={quote(error)}"
    return Redirect(target, status_code=HTTP_303_SEE_OTHER)


async def _show(request: Request[Any, Any, Any], db: Db, name: str, **context: Any) -> Template:
    return await render(
        request,
        db,
        name,
        COMPONENT_LABELS=COMPONENT_LABELS,
        STATUS_LABELS=STATUS_LABELS,
        today=_today(),
        **context,
    )


# --- the overview --------------------------------------------------------------------------


@get("/matching", guards=[requires_login], include_in_schema=False)
async def matching_home(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    cipher: Cipher,
    ok: Message = None,
    error: Message = None,
) -> Template:
    """Recommendations to act on, and where to start: my workers, live jobs."""
    recs: list[Any] = []
    if can(actor, "recommendation.view"):
        recs, _ = await queries.list_recommendations(
            session=db, actor=actor, cipher=cipher, today=_today(), limit=50
        )
    placements = {
        r.placement_id: await queries.get_placement(
            session=db, actor=actor, placement_id=r.placement_id
        )
        for r in recs
        if r.placement_id
    }
    return await _show(
        request,
        db,
        "matching/home.html",
        recs=recs,
        placements=placements,
        workers=await _my_workers(db, actor),
        jobs=await _live_jobs(db, actor),
        is_broker=actor.role == Role.broker,
        is_employer=actor.role in EMPLOYER_ROLES,
        ok=ok,
        error=error,
    )


async def _my_workers(db: Db, actor: Actor) -> list[Worker]:
    """A broker's consenting workers, those looking for work first."""
    if actor.role != Role.broker:
        return []
    reach = await scope.reach(db, actor)
    rows = await db.execute(
        select(Worker)
        .where(
            col(Worker.hukou_village_code).in_(sorted(reach.villages)),
            col(Worker.deleted_at).is_(None),
            col(Worker.consent_to_recommend).is_(True),
        )
        .order_by((col(Worker.employment_status) == "seeking").desc(), col(Worker.id).desc())
        .limit(30)
    )
    return list(rows.scalars())


async def _live_jobs(db: Db, actor: Actor) -> list[Any]:
    """Published jobs: an employer's own, everyone else's newest (with the place)."""
    stmt = select(Job).where(col(Job.status) == JobStatus.published)
    if actor.role in EMPLOYER_ROLES:
        org = await organization_of(db, actor)
        stmt = stmt.where((col(Job.organization_id) == org) | (col(Job.agency_id) == org))
    elif not can(actor, "matching.candidates"):
        return []
    jobs = list((await db.execute(stmt.order_by(col(Job.id).desc()).limit(20))).scalars())
    names = await cards.region_names(db, [j.work_region_code for j in jobs])
    orgs = await cards.organizations(db, [j.organization_id for j in jobs])
    return [cards.job_card(j, names=names, organization=orgs.get(j.organization_id)) for j in jobs]


# --- workers for a job, jobs for a worker ------------------------------------------------


@get("/matching/jobs/{job_id:int}", guards=[requires_login], include_in_schema=False)
async def job_candidates(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    cipher: Cipher,
    job_id: RowId,
    ok: Message = None,
    error: Message = None,
) -> Template:
    # Held here, the job candidates() reads is the same object (no second read).
    job = await db.get(Job, job_id)
    items, total = await matches.candidates(
        session=db, actor=actor, cipher=cipher, job_id=job_id, limit=30
    )
    assert job is not None
    standing = None
    if can(actor, "organization.standing"):
        standing = await followup.standing(session=db, organization_id=job.organization_id)
    return await _show(
        request,
        db,
        "matching/job.html",
        job=await cards.job_card_of(db, job),
        items=items,
        total=total,
        standing=standing,
        can_recommend=can(actor, "recommendation.create"),
        ok=ok,
        error=error,
    )


@get("/matching/workers/{worker_id:int}", guards=[requires_login], include_in_schema=False)
async def worker_matches(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    worker_id: RowId,
    ok: Message = None,
    error: Message = None,
) -> Template:
    items, total = await matches.matches(session=db, actor=actor, worker_id=worker_id, limit=30)
    worker = await db.get(Worker, worker_id)
    assert worker is not None
    return await _show(
        request,
        db,
        "matching/worker.html",
        worker=worker,
        items=items,
        total=total,
        can_recommend=can(actor, "recommendation.create") and worker.consent_to_recommend,
        ok=ok,
        error=error,
    )


# --- actions -------------------------------------------------------------------------------


class RecommendForm(BaseModel):
    job_id: int = Field(ge=1, le=2_147_483_647)
    worker_id: int = Field(ge=1, le=2_147_483_647)
    note: str = Field(default="", max_length=500)
    back: str = Field(default="/matching", max_length=200)


@post("/matching/recommend", guards=[requires_login], include_in_schema=False)
async def recommend_submit(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    data: URLEncodedBody[RecommendForm],
) -> Redirect:
    try:
        await service.recommend(
            session=db,
            actor=actor,
            data=RecommendationCreate(job_id=data.job_id, worker_id=data.worker_id, note=data.note),
        )
    except DomainError as exc:
        await refuse_in_form(request, db, exc)
        return _back(data.back, error=exc.message)
    return _back(data.back, ok="已推荐，等待用人单位处理")


class StatusForm(BaseModel):
    status: str = Field(max_length=16)
    starts_on: str = Field(default="", max_length=10)
    reason: str = Field(default="", max_length=500)
    back: str = Field(default="/matching", max_length=200)


@post(
    "/matching/recommendations/{recommendation_id:int}/status",
    guards=[requires_login],
    include_in_schema=False,
)
async def status_submit(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    recommendation_id: RowId,
    data: URLEncodedBody[StatusForm],
) -> Redirect:
    try:
        change = _status_change(data)
        await service.change_status(
            session=db,
            actor=actor,
            recommendation_id=recommendation_id,
            data=change,
            today=_today(),
        )
    except DomainError as exc:
        await refuse_in_form(request, db, exc)
        return _back(data.back, error=exc.message)
    return _back(data.back, ok=f"已改为“{STATUS_LABELS.get(change.status, change.status)}”")


def _status_change(data: StatusForm) -> StatusChange:
    starts_on = None
    if data.starts_on:
        try:
            starts_on = date.fromisoformat(data.starts_on)
        except ValueError:
            raise Invalid("starts_on", "开工日期格式应为 2026-06-01") from None
    try:
        return StatusChange.model_validate(
            {"status": data.status, "starts_on": starts_on, "reason": data.reason or None}
        )
    except ValidationError as exc:
        field, message = next(iter(field_errors(exc).items()))
        raise Invalid(field, "状态不正确" if field == "status" else message) from None


class WageForm(BaseModel):
    paid: str = Field(max_length=16)  # full_on_time | full_late | unpaid
    owed_yuan: str = Field(default="", max_length=12)
    note: str = Field(default="", max_length=500)
    back: str = Field(default="/matching", max_length=200)


@post(
    "/matching/placements/{placement_id:int}/wage-report",
    guards=[requires_login],
    include_in_schema=False,
)
async def wage_submit(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    placement_id: RowId,
    data: URLEncodedBody[WageForm],
) -> Redirect:
    try:
        report = _wage_report(data)
        _, case = await followup.report_wage(
            session=db, actor=actor, placement_id=placement_id, data=report, today=_today()
        )
    except DomainError as exc:
        await refuse_in_form(request, db, exc)
        return _back(data.back, error=exc.message)
    done = "已登记欠薪，将转维权处理" if case else "已记录首月工资回访"
    return _back(data.back, ok=done)


def _wage_report(data: WageForm) -> WageReportCreate:
    answers = {
        "full_on_time": (True, True),
        "full_late": (True, False),
        "unpaid": (False, False),
    }
    if data.paid not in answers:
        raise Invalid("paid", "请选择首月工资的发放情况")
    owed = None
    if data.owed_yuan.strip():
        try:
            owed = round(float(data.owed_yuan) * 100)
        except ValueError:
            raise Invalid("owed_fen", "欠薪金额请填数字（元）") from None
        if not 0 <= owed <= 100_000_000:
            raise Invalid("owed_fen", "欠薪金额应在 0 至 100 万元之间")
    full, on_time = answers[data.paid]
    return WageReportCreate(
        paid_in_full=full, paid_on_time=on_time, owed_fen=owed, note=data.note or None
    )
