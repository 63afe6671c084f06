"""Training pages for officers (docs/training.md): sessions and attendance, the
four-days compliance report, courses and their materials."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body, QueryParameter
from litestar.response import File, Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace.access import Actor, can
from marketplace.brokers import training, training_courses
from marketplace.brokers.training_models import (
    MAX_MATERIAL_BYTES,
    MODE_LABELS,
    AttendanceEntry,
    CourseCreate,
    MaterialTextCreate,
    SessionCreate,
)
from marketplace.errors import DomainError, Invalid
from marketplace.regions.models import Region
from web.api.training import UPLOAD_SLACK, media_dir
from web.auth import requires_login
from web.deps import CurrentActor, Db, Page, Paging, RowId
from web.pages.base import field_errors, refuse_in_form, render

Year = Annotated[int | None, QueryParameter(ge=2000, le=2100)]
RegionCode = Annotated[str | None, QueryParameter(pattern=r"^\d{2,12}$")]
MODES = {m.value: label for m, label in MODE_LABELS.items()}


async def region_names(db: AsyncSession, codes: set[str]) -> dict[str, str]:
    if not codes:
        return {}
    rows = await db.execute(
        select(col(Region.code), col(Region.name)).where(col(Region.code).in_(codes))
    )
    return {code: name for code, name in rows.all()}


def _session_form(form: Any) -> dict[str, Any]:
    return {
        key: str(form.get(key) or "")
        for key in ("title", "region_code", "starts_on", "days", "mode", "location", "course_id")
    } | {"refresher": bool(form.get("refresher"))}


async def _sessions_page(
    request: Request[Any, Any, Any],
    db: AsyncSession,
    actor: Actor,
    *,
    limit: int,
    offset: int,
    region_code: str | None = None,
    year: int | None = None,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    rows, total = await training.list_sessions(
        session=db, actor=actor, region_code=region_code, year=year, limit=limit, offset=offset
    )
    counts = await training.attendee_counts(db, [r.id for r in rows if r.id is not None])
    courses, _ = await training_courses.list_courses(session=db, actor=actor, limit=200)
    return await render(
        request,
        db,
        "training/sessions.html",
        status_code=status_code,
        rows=rows,
        total=total,
        counts=counts,
        names=await region_names(db, {r.region_code for r in rows}),
        courses=courses,
        modes=MODES,
        region_code=region_code or "",
        year=year or "",
        may_manage=can(actor, "training.manage"),
        form=form or {"region_code": actor.region_code, "days": "1", "mode": "offline"},
        errors=errors or {},
        page=Page(limit=limit, offset=offset),
        query={k: v for k, v in {"region_code": region_code, "year": year}.items() if v},
    )


@get("/training", guards=[requires_login], include_in_schema=False)
async def training_page(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    page: Paging,
    region_code: RegionCode = None,
    year: Year = None,
) -> Template:
    return await _sessions_page(
        request, db, actor, limit=page.limit, offset=page.offset, region_code=region_code, year=year
    )


@post("/training", guards=[requires_login], include_in_schema=False)
async def training_create(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor
) -> Response[Any] | Template:
    raw = await request.form()
    form = _session_form(raw)
    try:
        data = SessionCreate.model_validate(
            {
                "title": form["title"],
                "region_code": form["region_code"],
                "starts_on": form["starts_on"] or None,
                "days": form["days"] or None,
                "mode": form["mode"] or None,
                "location": form["location"] or None,
                "refresher": form["refresher"],
                "course_id": int(form["course_id"]) if form["course_id"].isdigit() else None,
            }
        )
        made = await training.create_session(session=db, actor=actor, data=data)
    except ValidationError as exc:
        errors = field_errors(exc)
        return await _sessions_page(
            request, db, actor, limit=50, offset=0, form=form, errors=errors, status_code=422
        )
    except DomainError as exc:
        errors = await refuse_in_form(request, db, exc)
        return await _sessions_page(
            request, db, actor, limit=50, offset=0, form=form, errors=errors, status_code=exc.status
        )
    return Redirect(f"/training/{made.id}", status_code=HTTP_303_SEE_OTHER)


@get("/training/compliance", guards=[requires_login], include_in_schema=False)
async def compliance_page(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    region_code: RegionCode = None,
    year: Year = None,
) -> Template:
    report = await training.compliance(session=db, actor=actor, region_code=region_code, year=year)
    return await render(
        request,
        db,
        "training/compliance.html",
        report=report,
        names=await region_names(db, {r.village_code for r in report.short} | {report.region_code}),
    )


async def _session_page(
    request: Request[Any, Any, Any],
    db: AsyncSession,
    actor: Actor,
    training_id: int,
    *,
    errors: dict[str, str] | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> Template:
    row = await training.get_session(session=db, actor=actor, training_id=training_id)
    present = {
        a.trainee: a
        for a in await training.attendance(session=db, actor=actor, training_id=training_id)
    }
    may_manage = can(actor, "training.manage", region_code=row.region_code)
    eligible = (
        await training.eligible_trainees(session=db, actor=actor, training_id=training_id)
        if may_manage
        else []
    )
    listed = {e.trainee for e in eligible}
    # Someone recorded earlier but no longer eligible (retired, say) still shows.
    rows = eligible + [a for t, a in present.items() if t not in listed]
    names = await region_names(db, {r.village_code for r in rows} | {row.region_code})
    return await render(
        request,
        db,
        "training/session.html",
        status_code=status_code,
        row=row,
        rows=rows,
        present=present,
        names=names,
        modes=MODES,
        may_manage=may_manage,
        started=row.starts_on <= training.today_local(),
        errors=errors or {},
        notice=notice,
    )


@get("/training/{training_id:int}", guards=[requires_login], include_in_schema=False)
async def session_page(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor, training_id: RowId
) -> Template:
    return await _session_page(request, db, actor, training_id)


@post("/training/{training_id:int}/attendance", guards=[requires_login], include_in_schema=False)
async def attendance_save(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor, training_id: RowId
) -> Template:
    form = await request.form()
    chosen = [str(t) for t in form.getall("trainee")] if "trainee" in form else []
    entries = []
    try:
        for trainee in chosen:
            raw_days = str(form.get(f"days-{trainee}") or "").strip()
            if raw_days and not raw_days.isdigit():
                raise Invalid("days", f"出勤天数应为整数（{trainee}）")
            entries.append(
                AttendanceEntry(trainee=trainee, days=int(raw_days) if raw_days else None)
            )
        await training.record_attendance(
            session=db, actor=actor, training_id=training_id, entries=entries
        )
    except ValidationError as exc:
        await db.rollback()
        return await _session_page(
            request, db, actor, training_id, errors=field_errors(exc), status_code=422
        )
    except DomainError as exc:
        errors = await refuse_in_form(request, db, exc)
        return await _session_page(
            request, db, actor, training_id, errors=errors, status_code=exc.status
        )
    return await _session_page(
        request, db, actor, training_id, notice=f"已保存出勤记录（{len(entries)} 人）"
    )


# --- courses and materials --------------------------------------------------------------


async def _courses_page(
    request: Request[Any, Any, Any],
    db: AsyncSession,
    actor: Actor,
    *,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    rows, total = await training_courses.list_courses(session=db, actor=actor, limit=200)
    return await render(
        request,
        db,
        "training/courses.html",
        status_code=status_code,
        rows=rows,
        total=total,
        may_edit=can(actor, "training.course_edit"),
        form=form or {"title": "", "content": "", "refresher": False},
        errors=errors or {},
    )


@get("/training/courses", guards=[requires_login], include_in_schema=False)
async def courses_page(request: Request[Any, Any, Any], db: Db, actor: CurrentActor) -> Template:
    return await _courses_page(request, db, actor)


@post("/training/courses", guards=[requires_login], include_in_schema=False)
async def course_create(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor
) -> Response[Any] | Template:
    raw = await request.form()
    form = {
        "title": str(raw.get("title") or ""),
        "content": str(raw.get("content") or ""),
        "refresher": bool(raw.get("refresher")),
    }
    try:
        course = await training_courses.create_course(
            session=db, actor=actor, data=CourseCreate.model_validate(form)
        )
    except ValidationError as exc:
        return await _courses_page(
            request, db, actor, form=form, errors=field_errors(exc), status_code=422
        )
    except DomainError as exc:
        errors = await refuse_in_form(request, db, exc)
        return await _courses_page(
            request, db, actor, form=form, errors=errors, status_code=exc.status
        )
    return Redirect(f"/training/courses/{course.id}", status_code=HTTP_303_SEE_OTHER)


async def _course_page(
    request: Request[Any, Any, Any],
    db: AsyncSession,
    actor: Actor,
    course_id: int,
    *,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    course = await training_courses.get_course(session=db, actor=actor, course_id=course_id)
    return await render(
        request,
        db,
        "training/course.html",
        status_code=status_code,
        course=course,
        materials=await training_courses.materials(session=db, actor=actor, course_id=course_id),
        may_edit=can(actor, "training.course_edit", region_code=course.region_code),
        errors=errors or {},
        max_mb=MAX_MATERIAL_BYTES // (1024 * 1024),
    )


@get("/training/courses/{course_id:int}", guards=[requires_login], include_in_schema=False)
async def course_page(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor, course_id: RowId
) -> Template:
    return await _course_page(request, db, actor, course_id)


@post(
    "/training/courses/{course_id:int}/materials", guards=[requires_login], include_in_schema=False
)
async def material_add_text(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor, course_id: RowId
) -> Response[Any] | Template:
    raw = await request.form()
    try:
        data = MaterialTextCreate(
            title=str(raw.get("title") or ""), text=str(raw.get("text") or "")
        )
        await training_courses.add_text_material(
            session=db, actor=actor, course_id=course_id, data=data
        )
    except ValidationError as exc:
        return await _course_page(
            request, db, actor, course_id, errors=field_errors(exc), status_code=422
        )
    except DomainError as exc:
        errors = await refuse_in_form(request, db, exc)
        return await _course_page(
            request, db, actor, course_id, errors=errors, status_code=exc.status
        )
    return Redirect(f"/training/courses/{course_id}", status_code=HTTP_303_SEE_OTHER)


@dataclass
class UploadForm:
    """Multipart fields of the material upload."""

    file: UploadFile | None = None
    title: str = ""


@post(
    "/training/courses/{course_id:int}/upload",
    guards=[requires_login],
    include_in_schema=False,
    request_max_body_size=MAX_MATERIAL_BYTES + UPLOAD_SLACK,
)
async def material_upload(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    course_id: RowId,
    data: Annotated[UploadForm, Body(media_type=RequestEncodingType.MULTI_PART)],
) -> Response[Any] | Template:
    upload = data.file
    try:
        if not isinstance(upload, UploadFile):
            raise Invalid("file", "请选择要上传的文件")
        await training_courses.add_file_material(
            session=db,
            actor=actor,
            course_id=course_id,
            title=data.title,
            file_name=upload.filename,
            stream=upload.file,
            media_dir=media_dir(request),
        )
    except DomainError as exc:
        errors = await refuse_in_form(request, db, exc)
        return await _course_page(
            request, db, actor, course_id, errors=errors, status_code=exc.status
        )
    finally:
        if isinstance(upload, UploadFile):
            await upload.close()
    return Redirect(f"/training/courses/{course_id}", status_code=HTTP_303_SEE_OTHER)


@get(
    "/training/courses/{course_id:int}/materials/{material_id:int}",
    guards=[requires_login],
    include_in_schema=False,
)
async def material_download(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    course_id: RowId,
    material_id: RowId,
) -> File:
    row, path = await training_courses.material_file(
        session=db,
        actor=actor,
        course_id=course_id,
        material_id=material_id,
        media_dir=media_dir(request),
    )
    return File(path=path, filename=row.file_name or path.name, media_type=row.media_type)
