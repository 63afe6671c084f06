"""Training sessions, attendance, compliance and courses (docs/training.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.connection import ASGIConnection
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.handlers import BaseRouteHandler
from litestar.params import Body, JSONBody, QueryParameter
from litestar.response import File

from marketplace.access import require
from marketplace.brokers import training, training_courses
from marketplace.brokers.training_models import (
    MAX_MATERIAL_BYTES,
    AttendancePublic,
    AttendanceRecord,
    ComplianceReport,
    CourseCreate,
    CoursePublic,
    MaterialPublic,
    MaterialTextCreate,
    SessionCreate,
    SessionPublic,
    TrainingCourse,
    TrainingMaterial,
    TrainingSession,
)
from web.api.schemas import Paged
from web.auth import principal_of, requires_login
from web.deps import CurrentActor, Db, Paging, RowId

RegionCode = Annotated[
    str | None, QueryParameter(pattern=r"^\d{2,12}$", description="区划代码前缀")
]
Year = Annotated[int | None, QueryParameter(ge=2000, le=2100, description="年份")]
UPLOAD_SLACK = 64 * 1024


def media_dir(request: Request[Any, Any, Any]) -> Path:
    path: Path = request.app.state.settings.media_dir
    return path


def session_public(row: TrainingSession, attendees: int = 0) -> SessionPublic:
    assert row.id is not None
    return SessionPublic(
        id=row.id,
        title=row.title,
        course_id=row.course_id,
        region_code=row.region_code,
        starts_on=row.starts_on,
        days=row.days,
        mode=row.mode,
        location=row.location,
        refresher=row.refresher,
        attendees=attendees,
    )


def course_public(row: TrainingCourse) -> CoursePublic:
    assert row.id is not None
    return CoursePublic(
        id=row.id,
        title=row.title,
        content=row.content,
        refresher=row.refresher,
        region_code=row.region_code,
        created_at=row.created_at,
    )


def material_public(row: TrainingMaterial) -> MaterialPublic:
    assert row.id is not None
    return MaterialPublic(
        id=row.id,
        course_id=row.course_id,
        title=row.title,
        kind=row.kind,
        text=row.text,
        file_name=row.file_name,
        media_type=row.media_type,
        size_bytes=row.size_bytes,
        created_at=row.created_at,
    )


class TrainingsController(Controller):
    path = "/api/v1/trainings"
    tags = ["培训"]
    guards = [requires_login]

    @get("/")
    async def list_sessions(
        self,
        db: Db,
        actor: CurrentActor,
        page: Paging,
        region_code: RegionCode = None,
        year: Year = None,
    ) -> Paged[SessionPublic]:
        rows, total = await training.list_sessions(
            session=db,
            actor=actor,
            region_code=region_code,
            year=year,
            limit=page.limit,
            offset=page.offset,
        )
        counts = await training.attendee_counts(db, [r.id for r in rows if r.id is not None])
        return Paged(items=[session_public(r, counts.get(r.id or 0, 0)) for r in rows], total=total)

    @post("/")
    async def create(
        self, db: Db, actor: CurrentActor, data: JSONBody[SessionCreate]
    ) -> SessionPublic:
        return session_public(await training.create_session(session=db, actor=actor, data=data))

    @get("/compliance")
    async def compliance(
        self, db: Db, actor: CurrentActor, region_code: RegionCode = None, year: Year = None
    ) -> ComplianceReport:
        return await training.compliance(
            session=db, actor=actor, region_code=region_code, year=year
        )

    @get("/{training_id:int}")
    async def get_session(self, db: Db, actor: CurrentActor, training_id: RowId) -> SessionPublic:
        row = await training.get_session(session=db, actor=actor, training_id=training_id)
        counts = await training.attendee_counts(db, [training_id])
        return session_public(row, counts.get(training_id, 0))

    @get("/{training_id:int}/attendance")
    async def attendance(
        self, db: Db, actor: CurrentActor, training_id: RowId
    ) -> Paged[AttendancePublic]:
        rows = await training.attendance(session=db, actor=actor, training_id=training_id)
        return Paged(items=rows, total=len(rows))

    @post("/{training_id:int}/attendance", status_code=200)
    async def record_attendance(
        self, db: Db, actor: CurrentActor, training_id: RowId, data: JSONBody[AttendanceRecord]
    ) -> Paged[AttendancePublic]:
        rows = await training.record_attendance(
            session=db, actor=actor, training_id=training_id, entries=data.entries
        )
        return Paged(items=rows, total=len(rows))

    @get("/{training_id:int}/trainees")
    async def trainees(
        self, db: Db, actor: CurrentActor, training_id: RowId
    ) -> Paged[AttendancePublic]:
        rows = await training.eligible_trainees(session=db, actor=actor, training_id=training_id)
        return Paged(items=rows, total=len(rows))


async def may_edit_courses(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Refuse roles that may not add materials before reading an upload."""
    require(principal_of(connection).actor, "training.course_edit")


@dataclass
class MaterialUpload:
    file: UploadFile
    title: str = ""


class TrainingCoursesController(Controller):
    path = "/api/v1/training-courses"
    tags = ["培训"]
    guards = [requires_login]

    @get("/")
    async def list_courses(self, db: Db, actor: CurrentActor, page: Paging) -> Paged[CoursePublic]:
        rows, total = await training_courses.list_courses(
            session=db, actor=actor, limit=page.limit, offset=page.offset
        )
        return Paged(items=[course_public(r) for r in rows], total=total)

    @post("/")
    async def create(
        self, db: Db, actor: CurrentActor, data: JSONBody[CourseCreate]
    ) -> CoursePublic:
        return course_public(
            await training_courses.create_course(session=db, actor=actor, data=data)
        )

    @get("/{course_id:int}")
    async def get_course(self, db: Db, actor: CurrentActor, course_id: RowId) -> CoursePublic:
        return course_public(
            await training_courses.get_course(session=db, actor=actor, course_id=course_id)
        )

    @get("/{course_id:int}/materials")
    async def materials(
        self, db: Db, actor: CurrentActor, course_id: RowId
    ) -> Paged[MaterialPublic]:
        rows = await training_courses.materials(session=db, actor=actor, course_id=course_id)
        return Paged(items=[material_public(r) for r in rows], total=len(rows))

    @post("/{course_id:int}/materials")
    async def add_text(
        self, db: Db, actor: CurrentActor, course_id: RowId, data: JSONBody[MaterialTextCreate]
    ) -> MaterialPublic:
        row = await training_courses.add_text_material(
            session=db, actor=actor, course_id=course_id, data=data
        )
        return material_public(row)

    @post(
        "/{course_id:int}/materials/upload",
        guards=[may_edit_courses],
        request_max_body_size=MAX_MATERIAL_BYTES + UPLOAD_SLACK,
    )
    async def upload(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        actor: CurrentActor,
        course_id: RowId,
        data: Annotated[MaterialUpload, Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> MaterialPublic:
        try:
            row = await training_courses.add_file_material(
                session=db,
                actor=actor,
                course_id=course_id,
                title=data.title,
                file_name=data.file.filename,
                stream=data.file.file,
                media_dir=media_dir(request),
            )
        finally:
            await data.file.close()
        return material_public(row)

    @get("/{course_id:int}/materials/{material_id:int}/file")
    async def download(
        self,
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
        return File(
            path=path,
            filename=row.file_name or path.name,
            media_type=row.media_type,
            content_disposition_type="attachment",
        )
