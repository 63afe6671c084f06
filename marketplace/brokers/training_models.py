"""Training (培训): courses and their materials, sessions, and who attended (docs/training.md).

A trainee is either a certified broker or an applicant in training who is not a
broker yet; an attendance row names exactly one of the two (``broker_id`` or
``application_id``, checked by the database). Once an applicant is certified, the
application's ``broker_id`` links the days they trained as an applicant to the broker.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from marketplace.clock import utcnow
from marketplace.db import UTCDateTime
from marketplace.errors import Invalid

# The plan: at least 4 days of centralised training per broker per calendar year.
REQUIRED_DAYS_PER_YEAR = 4
MAX_SESSION_DAYS = 30
MAX_MATERIAL_BYTES = 20 * 1024 * 1024


class TrainingMode(StrEnum):
    offline = "offline"  # 线下集中培训
    online = "online"  # 线上培训
    meeting = "meeting"  # 以会代训


MODE_LABELS = {
    TrainingMode.offline: "线下集中培训",
    TrainingMode.online: "线上培训",
    TrainingMode.meeting: "以会代训",
}


class TrainingCourse(SQLModel, table=True):
    __tablename__ = "training_course"

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=100)
    content: str = Field(default="", sa_type=Text)
    # 复训: content for brokers who already trained last year.
    refresher: bool = False
    region_code: str = Field(foreign_key="region.code", max_length=12, index=True)
    created_by: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class TrainingMaterial(SQLModel, table=True):
    """A course material: an uploaded file (kept under the media dir) or a text."""

    __tablename__ = "training_material"

    id: int | None = Field(default=None, primary_key=True)
    course_id: int = Field(foreign_key="training_course.id", index=True)
    title: str = Field(max_length=100)
    kind: str = Field(max_length=8)  # file | text
    text: str | None = Field(default=None, sa_type=Text)
    file_name: str | None = Field(default=None, max_length=200)
    stored_name: str | None = Field(default=None, max_length=80)
    media_type: str | None = Field(default=None, max_length=100)
    size_bytes: int | None = None
    created_by: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class TrainingSession(SQLModel, table=True):
    __tablename__ = "training_session"
    __table_args__ = (
        Index("ix_training_session_region_starts", "region_code", "starts_on"),
        CheckConstraint(f"days >= 1 AND days <= {MAX_SESSION_DAYS}", name="ck_training_days"),
    )

    id: int | None = Field(default=None, primary_key=True)
    course_id: int | None = Field(default=None, foreign_key="training_course.id")
    title: str = Field(max_length=100)
    # The region that runs it (district or township); attendance scope follows it.
    region_code: str = Field(foreign_key="region.code", max_length=12)
    starts_on: date
    days: int
    mode: str = Field(max_length=16)
    location: str | None = Field(default=None, max_length=200)
    refresher: bool = False
    created_by: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class TrainingAttendance(SQLModel, table=True):
    __tablename__ = "training_attendance"
    __table_args__ = (
        UniqueConstraint("session_id", "broker_id"),
        UniqueConstraint("session_id", "application_id"),
        CheckConstraint(
            "(broker_id IS NULL) <> (application_id IS NULL)", name="ck_attendance_one_trainee"
        ),
        CheckConstraint("days >= 1", name="ck_attendance_days"),
    )

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="training_session.id", index=True)
    broker_id: int | None = Field(default=None, foreign_key="broker.id", index=True)
    application_id: int | None = Field(
        default=None, foreign_key="broker_application.id", index=True
    )
    name: str = Field(max_length=64)
    village_code: str = Field(foreign_key="region.code", max_length=12)
    days: int
    recorded_by: int | None = Field(default=None, foreign_key="user_account.id")
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# --- the trainee reference ---------------------------------------------------------------


@dataclass(frozen=True)
class TraineeRef:
    """``broker:12`` or ``application:34``: who attended, before or after certification."""

    kind: str  # broker | application
    id: int

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"

    @classmethod
    def parse(cls, raw: str, *, field: str = "trainee") -> TraineeRef:
        kind, _, number = (raw or "").strip().partition(":")
        if kind not in ("broker", "application") or not number.isdigit() or int(number) < 1:
            raise Invalid(field, f"学员编号 {raw!r} 无效：应为 broker:编号 或 application:编号")
        return cls(kind=kind, id=int(number))


# --- request and response schemas --------------------------------------------------------


class CourseCreate(SQLModel):
    title: str = Field(min_length=1, max_length=100)
    content: str = Field(default="", max_length=20_000)
    refresher: bool = False
    region_code: str | None = Field(default=None, max_length=12)


class CoursePublic(SQLModel):
    id: int
    title: str
    content: str
    refresher: bool
    region_code: str
    created_at: datetime


class MaterialTextCreate(SQLModel):
    title: str = Field(min_length=1, max_length=100)
    text: str = Field(min_length=1, max_length=50_000)


class MaterialPublic(SQLModel):
    id: int
    course_id: int
    title: str
    kind: str
    text: str | None
    file_name: str | None
    media_type: str | None
    size_bytes: int | None
    created_at: datetime


class SessionCreate(SQLModel):
    title: str = Field(min_length=1, max_length=100)
    course_id: int | None = Field(default=None, ge=1, le=2_147_483_647)
    region_code: str = Field(max_length=12)
    starts_on: date
    days: int = Field(ge=1, le=MAX_SESSION_DAYS)
    mode: TrainingMode
    location: str | None = Field(default=None, max_length=200)
    refresher: bool = False


class SessionPublic(SQLModel):
    id: int
    title: str
    course_id: int | None
    region_code: str
    starts_on: date
    days: int
    mode: str
    location: str | None
    refresher: bool
    attendees: int = 0


class AttendanceEntry(SQLModel):
    trainee: str = Field(max_length=32, description="broker:编号 或 application:编号")
    days: int | None = Field(default=None, ge=1, le=MAX_SESSION_DAYS)


class AttendanceRecord(SQLModel):
    """Replace the session's attendance with ``entries`` (absent trainees are removed)."""

    entries: list[AttendanceEntry] = Field(max_length=2000)


class AttendancePublic(SQLModel):
    trainee: str
    name: str
    village_code: str
    days: int


class ComplianceRow(SQLModel):
    broker_id: int
    broker_no: str | None
    name: str
    village_code: str
    days: int
    refresher_days: int
    short_by: int
    trained_last_year: bool
    needs_refresher: bool


class ComplianceReport(SQLModel):
    region_code: str
    year: int
    required_days: int
    brokers: int
    compliant: int
    short: list[ComplianceRow]
    refresher_due: int
