"""Training courses and their materials (docs/training.md, "Training").

Material files live under the media dir (``media_dir/training``), named by a random
id, and are only served through an authorised route.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import IO

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace import audit
from marketplace.access import Actor, in_scope, require
from marketplace.brokers.training_models import (
    MAX_MATERIAL_BYTES,
    CourseCreate,
    MaterialTextCreate,
    TrainingCourse,
    TrainingMaterial,
)
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


async def _region(session: AsyncSession, code: str, field: str) -> Region:
    region = await session.get(Region, code) if code else None
    if region is None:
        raise Invalid(field, f"区划代码 {code or '（空）'} 不存在")
    return region


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
