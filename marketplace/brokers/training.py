"""Training: courses and materials, sessions, attendance, the compliance report.

District admins and township officers (and the city) run sessions in their region and
record who attended; trainees are certified brokers and applicants in training
(``TraineeRef``). Material files live under the media dir (``media_dir/training``),
named by a random id, and are only served through an authorised route.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import IO

from sqlalchemy import ColumnElement, Select, and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace import audit
from marketplace.access import Actor, in_scope, require
from marketplace.brokers.models import (
    ApplicationStatus,
    Broker,
    BrokerApplication,
    BrokerStatus,
)
from marketplace.brokers.training_models import (
    MAX_MATERIAL_BYTES,
    REQUIRED_DAYS_PER_YEAR,
    AttendanceEntry,
    AttendancePublic,
    ComplianceReport,
    CourseCreate,
    MaterialTextCreate,
    SessionCreate,
    TraineeRef,
    TrainingAttendance,
    TrainingCourse,
    TrainingMaterial,
    TrainingSession,
)
from marketplace.brokers.training_rules import BrokerFacts, compliance_rows
from marketplace.clock import local, utcnow
from marketplace.db import fetch_page
from marketplace.errors import Invalid, NotFound
from marketplace.regions.models import Region

MATERIAL_SUFFIXES = {
    ".pdf": "application/pdf",
    ".doc": "application/msword",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".ppt": "application/vnd.ms-powerpoint",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".xls": "application/vnd.ms-excel",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".txt": "text/plain; charset=utf-8",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".mp4": "video/mp4",
    ".mp3": "audio/mpeg",
}
TRAINEE_BROKER_STATUSES = (BrokerStatus.active, BrokerStatus.suspended)


def today_local() -> date:
    return local(utcnow()).date()


async def _region(session: AsyncSession, code: str, field: str) -> Region:
    region = await session.get(Region, code) if code else None
    if region is None:
        raise Invalid(field, f"区划代码 {code or '（空）'} 不存在")
    return region


# --- courses and materials ----------------------------------------------------------------


async def create_course(
    *, session: AsyncSession, actor: Actor, data: CourseCreate
) -> TrainingCourse:
    region_code = data.region_code or actor.region_code
    await _region(session, region_code, "region_code")
    require(actor, "training.course_edit", region_code=region_code)
    course = TrainingCourse(
        title=data.title.strip(),
        content=data.content.strip(),
        refresher=data.refresher,
        region_code=region_code,
        created_by=actor.user_id,
    )
    if not course.title:
        raise Invalid("title", "课程名称不能为空")
    session.add(course)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="training.course_create",
        object_type="training_course",
        object_id=course.id,
        region_code=region_code,
    )
    return course


async def list_courses(
    *, session: AsyncSession, actor: Actor, limit: int = 50, offset: int = 0
) -> tuple[list[TrainingCourse], int]:
    """Courses any officer of the region may use: the city's, and those above or inside
    the reader's region."""
    require(actor, "training.view")
    prefixes = [actor.region_code[:n] for n in (2, 6, 9, 12) if n <= len(actor.region_code)]
    where: list[ColumnElement[bool]] = [
        or_(
            col(TrainingCourse.region_code).in_(prefixes),
            col(TrainingCourse.region_code).startswith(actor.region_code),
        )
    ]
    return await fetch_page(
        session,
        TrainingCourse,
        where,
        order_by=col(TrainingCourse.id).desc(),
        limit=limit,
        offset=offset,
    )


async def get_course(*, session: AsyncSession, actor: Actor, course_id: int) -> TrainingCourse:
    require(actor, "training.view")
    course = await session.get(TrainingCourse, course_id)
    # Visible when it belongs above the reader (the city's courses) or inside their region.
    if course is None or not (
        actor.region_code.startswith(course.region_code) or in_scope(actor, course.region_code)
    ):
        raise NotFound(f"课程 {course_id} 不存在", field="course_id")
    return course


async def _editable_course(session: AsyncSession, actor: Actor, course_id: int) -> TrainingCourse:
    course = await get_course(session=session, actor=actor, course_id=course_id)
    require(actor, "training.course_edit", region_code=course.region_code)
    return course


async def materials(
    *, session: AsyncSession, actor: Actor, course_id: int
) -> list[TrainingMaterial]:
    await get_course(session=session, actor=actor, course_id=course_id)
    rows = await session.execute(
        select(TrainingMaterial)
        .where(col(TrainingMaterial.course_id) == course_id)
        .order_by(col(TrainingMaterial.id))
    )
    return list(rows.scalars())


async def add_text_material(
    *, session: AsyncSession, actor: Actor, course_id: int, data: MaterialTextCreate
) -> TrainingMaterial:
    course = await _editable_course(session, actor, course_id)
    material = TrainingMaterial(
        course_id=course_id,
        title=data.title.strip(),
        kind="text",
        text=data.text.strip(),
        created_by=actor.user_id,
    )
    session.add(material)
    await session.flush()
    await _audit_material(session, actor, course, material)
    return material


async def _audit_material(
    session: AsyncSession, actor: Actor, course: TrainingCourse, material: TrainingMaterial
) -> None:
    await audit.record(
        session=session,
        actor=actor,
        action="training.material_add",
        object_type="training_material",
        object_id=material.id,
        region_code=course.region_code,
        detail={"course_id": course.id, "kind": material.kind},
    )


def _store(media_dir: Path, stream: IO[bytes], suffix: str) -> tuple[str, int]:
    """Copy the upload under a random name; refuse it past the size limit."""
    folder = media_dir / "training"
    folder.mkdir(parents=True, exist_ok=True)
    stored = secrets.token_hex(16) + suffix
    partial = folder / (stored + ".part")
    size = 0
    try:
        with partial.open("wb") as out:
            while chunk := stream.read(1 << 20):
                size += len(chunk)
                if size > MAX_MATERIAL_BYTES:
                    raise Invalid("file", f"文件不能超过 {MAX_MATERIAL_BYTES // (1024 * 1024)} MB")
                out.write(chunk)
        if size == 0:
            raise Invalid("file", "文件是空的")
        os.replace(partial, folder / stored)
    finally:
        partial.unlink(missing_ok=True)
    return stored, size


async def add_file_material(
    *,
    session: AsyncSession,
    actor: Actor,
    course_id: int,
    title: str,
    file_name: str,
    stream: IO[bytes],
    media_dir: Path,
) -> TrainingMaterial:
    course = await _editable_course(session, actor, course_id)
    name = Path(file_name or "").name.strip()
    suffix = Path(name).suffix.lower()
    if suffix not in MATERIAL_SUFFIXES:
        raise Invalid(
            "file",
            "只支持 " + "、".join(sorted(s.lstrip(".") for s in MATERIAL_SUFFIXES)) + " 文件",
        )
    clean_title = (title or "").strip() or Path(name).stem
    if len(clean_title) > 100:
        raise Invalid("title", "资料名称不能超过 100 个字")
    stored, size = _store(media_dir, stream, suffix)
    material = TrainingMaterial(
        course_id=course_id,
        title=clean_title,
        kind="file",
        file_name=name[:200],
        stored_name=stored,
        media_type=MATERIAL_SUFFIXES[suffix],
        size_bytes=size,
        created_by=actor.user_id,
    )
    session.add(material)
    await session.flush()
    await _audit_material(session, actor, course, material)
    return material


async def material_file(
    *, session: AsyncSession, actor: Actor, course_id: int, material_id: int, media_dir: Path
) -> tuple[TrainingMaterial, Path]:
    await get_course(session=session, actor=actor, course_id=course_id)
    material = await session.get(TrainingMaterial, material_id)
    if material is None or material.course_id != course_id or material.kind != "file":
        raise NotFound(f"资料 {material_id} 不存在", field="material_id")
    assert material.stored_name is not None
    path = media_dir / "training" / material.stored_name
    if not path.is_file():
        raise NotFound("资料文件已丢失，请重新上传", field="material_id")
    return material, path


# --- sessions ---------------------------------------------------------------------------


async def create_session(
    *, session: AsyncSession, actor: Actor, data: SessionCreate
) -> TrainingSession:
    region = await _region(session, data.region_code, "region_code")
    require(actor, "training.manage", region_code=region.code)
    if len(region.code) == 12:
        raise Invalid("region_code", "培训班应由区县或乡镇（街道）举办，请选择区县或乡镇")
    if data.course_id is not None:
        await get_course(session=session, actor=actor, course_id=data.course_id)
    title = data.title.strip()
    if not title:
        raise Invalid("title", "培训班名称不能为空")
    training = TrainingSession(
        course_id=data.course_id,
        title=title,
        region_code=region.code,
        starts_on=data.starts_on,
        days=data.days,
        mode=data.mode.value,
        location=(data.location or "").strip() or None,
        refresher=data.refresher,
        created_by=actor.user_id,
    )
    session.add(training)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="training.session_create",
        object_type="training_session",
        object_id=training.id,
        region_code=region.code,
    )
    return training


async def list_sessions(
    *,
    session: AsyncSession,
    actor: Actor,
    region_code: str | None = None,
    year: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[TrainingSession], int]:
    prefix = region_code or actor.region_code
    require(actor, "training.view", region_code=prefix)
    where = [col(TrainingSession.region_code).startswith(prefix)]
    if year is not None:
        where += [
            col(TrainingSession.starts_on) >= date(year, 1, 1),
            col(TrainingSession.starts_on) <= date(year, 12, 31),
        ]
    total = (
        await session.execute(select(func.count()).select_from(TrainingSession).where(*where))
    ).scalar_one()
    rows = await session.execute(
        select(TrainingSession)
        .where(*where)
        .order_by(col(TrainingSession.starts_on).desc(), col(TrainingSession.id).desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows.scalars()), int(total)


async def attendee_counts(session: AsyncSession, session_ids: list[int]) -> dict[int, int]:
    if not session_ids:
        return {}
    rows = await session.execute(
        select(col(TrainingAttendance.session_id), func.count())
        .where(col(TrainingAttendance.session_id).in_(session_ids))
        .group_by(col(TrainingAttendance.session_id))
    )
    return {int(sid): int(n) for sid, n in rows.all()}


async def get_session(*, session: AsyncSession, actor: Actor, training_id: int) -> TrainingSession:
    require(actor, "training.view")
    training = await session.get(TrainingSession, training_id)
    if training is None or not in_scope(actor, training.region_code):
        # Another region's session reads as absent, like the worker register.
        raise NotFound(f"培训班 {training_id} 不存在", field="training_id")
    return training


# --- trainees and attendance ------------------------------------------------------------


def ref_of(row: TrainingAttendance) -> TraineeRef:
    if row.broker_id is not None:
        return TraineeRef("broker", row.broker_id)
    assert row.application_id is not None
    return TraineeRef("application", row.application_id)


async def attendance(
    *, session: AsyncSession, actor: Actor, training_id: int
) -> list[AttendancePublic]:
    await get_session(session=session, actor=actor, training_id=training_id)
    rows = await session.execute(
        select(TrainingAttendance)
        .where(col(TrainingAttendance.session_id) == training_id)
        .order_by(col(TrainingAttendance.village_code), col(TrainingAttendance.name))
    )
    return [
        AttendancePublic(
            trainee=str(ref_of(r)), name=r.name, village_code=r.village_code, days=r.days
        )
        for r in rows.scalars()
    ]


async def eligible_trainees(
    *, session: AsyncSession, actor: Actor, training_id: int
) -> list[AttendancePublic]:
    """Who may be recorded for this session: brokers (active or suspended) and applicants
    in training from the session's region; ``days`` is the session's length."""
    training = await get_session(session=session, actor=actor, training_id=training_id)
    brokers = await session.execute(
        select(Broker)
        .where(
            col(Broker.village_code).startswith(training.region_code),
            col(Broker.status).in_(TRAINEE_BROKER_STATUSES),
        )
        .order_by(col(Broker.village_code), col(Broker.name))
        .limit(2000)
    )
    applicants = await session.execute(
        select(BrokerApplication)
        .where(
            col(BrokerApplication.village_code).startswith(training.region_code),
            col(BrokerApplication.status) == ApplicationStatus.in_training,
            col(BrokerApplication.broker_id).is_(None),
        )
        .order_by(col(BrokerApplication.village_code), col(BrokerApplication.name))
        .limit(2000)
    )
    out = [
        AttendancePublic(
            trainee=f"broker:{b.id}", name=b.name, village_code=b.village_code, days=training.days
        )
        for b in brokers.scalars()
    ]
    out += [
        AttendancePublic(
            trainee=f"application:{a.id}",
            name=a.name,
            village_code=a.village_code,
            days=training.days,
        )
        for a in applicants.scalars()
    ]
    return out


async def _resolve(
    session: AsyncSession, training: TrainingSession, ref: TraineeRef, field: str
) -> tuple[str, str]:
    """(name, village) of a trainee who may attend ``training``."""
    if ref.kind == "broker":
        broker = await session.get(Broker, ref.id)
        if broker is None:
            raise Invalid(field, f"经纪人 {ref.id} 不存在")
        if broker.status not in TRAINEE_BROKER_STATUSES:
            raise Invalid(field, f"经纪人{broker.name}已退出或被淘汰，不能记录培训")
        name, village = broker.name, broker.village_code
    else:
        application = await session.get(BrokerApplication, ref.id)
        if application is None:
            raise Invalid(field, f"申请 {ref.id} 不存在")
        if application.status != ApplicationStatus.in_training:
            raise Invalid(field, f"申请人{application.name}不在培训阶段，不能记录培训")
        name, village = application.name, application.village_code
    if not village.startswith(training.region_code):
        raise Invalid(field, f"{name}不属于本培训班所在区域 {training.region_code}")
    return name, village


async def record_attendance(
    *,
    session: AsyncSession,
    actor: Actor,
    training_id: int,
    entries: Iterable[AttendanceEntry],
) -> list[AttendancePublic]:
    """Set the session's attendance to exactly ``entries`` (idempotent: sending the
    same list twice changes nothing). Everything is checked before anything is written."""
    training = await get_session(session=session, actor=actor, training_id=training_id)
    require(actor, "training.manage", region_code=training.region_code)
    if training.starts_on > today_local():
        raise Invalid("training_id", "培训班尚未开始，不能登记出勤")
    wanted: dict[TraineeRef, tuple[str, str, int]] = {}
    for index, entry in enumerate(entries):
        field = f"entries[{index}].trainee"
        ref = TraineeRef.parse(entry.trainee, field=field)
        if ref in wanted:
            raise Invalid(field, f"学员 {ref} 重复出现")
        days = entry.days if entry.days is not None else training.days
        if days > training.days:
            raise Invalid(
                f"entries[{index}].days", f"出勤天数不能超过培训班天数（{training.days} 天）"
            )
        name, village = await _resolve(session, training, ref, field)
        wanted[ref] = (name, village, days)
    existing = {
        ref_of(r): r
        for r in (
            await session.execute(
                select(TrainingAttendance).where(col(TrainingAttendance.session_id) == training_id)
            )
        ).scalars()
    }
    removed = [r.id for ref, r in existing.items() if ref not in wanted]
    if removed:
        await session.execute(
            delete(TrainingAttendance).where(col(TrainingAttendance.id).in_(removed))
        )
    changed = len(removed)
    for ref, (name, village, days) in wanted.items():
        row = existing.get(ref)
        if row is not None:
            if row.days != days:
                row.days, row.recorded_by, row.recorded_at = days, actor.user_id, utcnow()
                session.add(row)
                changed += 1
            continue
        session.add(
            TrainingAttendance(
                session_id=training_id,
                broker_id=ref.id if ref.kind == "broker" else None,
                application_id=ref.id if ref.kind == "application" else None,
                name=name,
                village_code=village,
                days=days,
                recorded_by=actor.user_id,
            )
        )
        changed += 1
    await session.flush()
    if changed:
        await audit.record(
            session=session,
            actor=actor,
            action="training.attendance",
            object_type="training_session",
            object_id=training_id,
            region_code=training.region_code,
            detail={"attendees": len(wanted), "changed": changed},
        )
    return await attendance(session=session, actor=actor, training_id=training_id)


# --- compliance -------------------------------------------------------------------------


async def broker_days(
    session: AsyncSession, prefix: str, year: int, *, refresher_only: bool = False
) -> dict[int, int]:
    """Days per broker in ``year`` (sessions starting that year), counting days trained
    as an applicant before certification."""
    in_year = [
        col(TrainingSession.starts_on) >= date(year, 1, 1),
        col(TrainingSession.starts_on) <= date(year, 12, 31),
    ]
    if refresher_only:
        in_year.append(col(TrainingSession.refresher).is_(True))
    direct: Select[int | None, int] = (
        select(
            col(TrainingAttendance.broker_id).label("broker_id"),
            col(TrainingAttendance.days).label("days"),
        )
        .join(TrainingSession, col(TrainingSession.id) == col(TrainingAttendance.session_id))
        .where(col(TrainingAttendance.broker_id).is_not(None), *in_year)
        .where(col(TrainingAttendance.village_code).startswith(prefix))
    )
    as_applicant: Select[int | None, int] = (
        select(
            col(BrokerApplication.broker_id).label("broker_id"),
            col(TrainingAttendance.days).label("days"),
        )
        .join(TrainingSession, col(TrainingSession.id) == col(TrainingAttendance.session_id))
        .join(
            BrokerApplication,
            and_(
                col(BrokerApplication.id) == col(TrainingAttendance.application_id),
                col(BrokerApplication.broker_id).is_not(None),
            ),
        )
        .where(*in_year)
        .where(col(TrainingAttendance.village_code).startswith(prefix))
    )
    both = direct.union_all(as_applicant).subquery()
    rows = await session.execute(
        select(both.c.broker_id, func.sum(both.c.days)).group_by(both.c.broker_id)
    )
    return {int(broker_id): int(total) for broker_id, total in rows.all()}


async def compliance(
    *, session: AsyncSession, actor: Actor, region_code: str | None = None, year: int | None = None
) -> ComplianceReport:
    prefix = region_code or actor.region_code
    require(actor, "training.view", region_code=prefix)
    await _region(session, prefix, "region_code")
    year = year or today_local().year
    if not 2000 <= year <= 2100:
        raise Invalid("year", "年份应在 2000 到 2100 之间")
    rows = await session.execute(
        select(Broker)
        .where(
            col(Broker.village_code).startswith(prefix),
            col(Broker.status) == BrokerStatus.active,
        )
        .order_by(col(Broker.id))
    )
    brokers = [
        BrokerFacts(broker_id=b.id, broker_no=b.broker_no, name=b.name, village_code=b.village_code)
        for b in rows.scalars()
        if b.id is not None
    ]
    days = await broker_days(session, prefix, year)
    refresher = await broker_days(session, prefix, year, refresher_only=True)
    last_year = set(await broker_days(session, prefix, year - 1))
    report_rows = compliance_rows(brokers, days, refresher, last_year)
    return ComplianceReport(
        region_code=prefix,
        year=year,
        required_days=REQUIRED_DAYS_PER_YEAR,
        brokers=len(report_rows),
        compliant=sum(1 for r in report_rows if r.short_by == 0),
        short=[r for r in report_rows if r.short_by > 0],
        refresher_due=sum(1 for r in report_rows if r.needs_refresher),
    )
