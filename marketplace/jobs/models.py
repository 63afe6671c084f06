"""Jobs posted by employers (or by an agency for an employer) and their schemas.

``organization_id`` is the employer whose job it is; ``agency_id`` is set when an
authorised agency posted it. See docs/jobs.md for states, flags and the review.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal

from sqlalchemy import JSON, Index, Text
from sqlmodel import Field, SQLModel, col

from marketplace.clock import utcnow
from marketplace.db import UTCDateTime
from marketplace.workers.models import WageUnit


class JobStatus(StrEnum):
    draft = "draft"
    pending_review = "pending_review"
    published = "published"
    filled = "filled"
    closed = "closed"
    expired = "expired"


STATUS_LABELS = {
    JobStatus.draft: "草稿",
    JobStatus.pending_review: "待审核",
    JobStatus.published: "招聘中",
    JobStatus.filled: "已招满",
    JobStatus.closed: "已关闭",
    JobStatus.expired: "已过期",
}
# A live job is one workers may still be sent to (the duplicate check and search use it).
LIVE_STATUSES = frozenset({JobStatus.pending_review, JobStatus.published})


class Job(SQLModel, table=True):
    __tablename__ = "job"
    __table_args__ = (
        Index("ix_job_review_queue", "review_district_code", "status"),
        Index("ix_job_org_status", "organization_id", "status"),
        Index("ix_job_status_ends", "status", "ends_on"),
        Index("ix_job_region_status", "work_region_code", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    organization_id: int = Field(foreign_key="organization.id")
    agency_id: int | None = Field(default=None, foreign_key="organization.id", index=True)
    title: str = Field(max_length=60)
    description: str = Field(default="", sa_type=Text)
    occupation_code: str | None = Field(default=None, max_length=32, index=True)
    headcount: int
    wage_min_fen: int
    wage_max_fen: int
    wage_unit: str = Field(max_length=8)
    pay_day: int | None = None  # day of the month wages are paid (1–31), monthly pay
    # A Chongqing region code (district, township or village), or the 6-digit GB/T 2260
    # code of a city elsewhere (劳务输出) with the province and city in the text.
    work_region_code: str = Field(max_length=12)
    work_location_text: str | None = Field(default=None, max_length=100)
    address: str | None = Field(default=None, max_length=200)
    starts_on: date
    ends_on: date | None = None
    certificates_required: list[str] = Field(default_factory=list, sa_type=JSON)
    age_min: int | None = None
    age_max: int | None = None
    board: bool = False
    lodging: bool = False
    social_insurance: bool = False
    contact: str | None = Field(default=None, max_length=100)
    # The placement fee the employer pays (market ledger): at most one of the two.
    fee_fixed_fen: int | None = None
    fee_share_bp: int | None = None
    status: str = Field(default=JobStatus.draft, max_length=16)
    status_reason: str | None = Field(default=None, max_length=500)
    # [{code, message, blocking}] from marketplace.jobs.rules, refreshed on each change.
    flags: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    flagged: bool = False  # any flag at all: the review queue sorts these first
    # The district whose admin reviews: the work district in Chongqing, else the
    # employer's district.
    review_district_code: str = Field(max_length=6)
    created_by: int | None = Field(default=None, foreign_key="user_account.id")
    reviewed_by: int | None = Field(default=None, foreign_key="user_account.id")
    submitted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reviewed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    published_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


@dataclass(frozen=True)
class JobLine:
    """A row of the jobs page: what the list shows of a job (``service.list_lines``)."""

    id: int
    organization_id: int
    title: str
    status: str
    flags: list[dict[str, Any]]
    wage_min_fen: int
    wage_max_fen: int
    wage_unit: str
    headcount: int
    work_region_code: str
    work_location_text: str | None
    submitted_at: datetime | None
    starts_on: date
    ends_on: date | None


# What a JobLine is read from, in the order of its fields.
LINE_COLUMNS = (
    col(Job.id),
    col(Job.organization_id),
    col(Job.title),
    col(Job.status),
    col(Job.flags),
    col(Job.wage_min_fen),
    col(Job.wage_max_fen),
    col(Job.wage_unit),
    col(Job.headcount),
    col(Job.work_region_code),
    col(Job.work_location_text),
    col(Job.submitted_at),
    col(Job.starts_on),
    col(Job.ends_on),
)


# --- request and response schemas ------------------------------------------------------


class FlagPublic(SQLModel):
    code: str
    message: str
    blocking: bool = False


class JobCreate(SQLModel):
    """The job as item 10 of the issue specifies it, plus pay day and placement fee.
    ``organization_id`` is the employer; an agency account posts for an employer that
    authorised it (or for itself)."""

    organization_id: int = Field(ge=1, le=2_147_483_647)
    title: str = Field(min_length=2, max_length=60)
    description: str = Field(default="", max_length=5000)
    occupation_code: str | None = Field(default=None, max_length=32)
    headcount: int = Field(ge=1, le=10_000)
    wage_min_fen: int = Field(ge=0, le=100_000_000)
    wage_max_fen: int = Field(ge=0, le=100_000_000)
    wage_unit: WageUnit
    pay_day: int | None = Field(default=None, ge=1, le=31)
    work_region_code: str = Field(max_length=12)
    work_location_text: str | None = Field(default=None, max_length=100)
    address: str | None = Field(default=None, max_length=200)
    starts_on: date
    ends_on: date | None = None
    certificates_required: list[str] = Field(default_factory=list, max_length=10)
    age_min: int | None = Field(default=None, ge=0, le=100)
    age_max: int | None = Field(default=None, ge=0, le=100)
    board: bool = False
    lodging: bool = False
    social_insurance: bool = False
    contact: str | None = Field(default=None, max_length=100)
    fee_fixed_fen: int | None = Field(default=None, ge=0, le=100_000_000)
    fee_share_bp: int | None = Field(default=None, ge=0, le=10_000)


class JobUpdate(SQLModel):
    """Every field optional; only those sent change. ``status`` closes a published job
    or marks it filled."""

    title: str | None = Field(default=None, min_length=2, max_length=60)
    description: str | None = Field(default=None, max_length=5000)
    occupation_code: str | None = Field(default=None, max_length=32)
    headcount: int | None = Field(default=None, ge=1, le=10_000)
    wage_min_fen: int | None = Field(default=None, ge=0, le=100_000_000)
    wage_max_fen: int | None = Field(default=None, ge=0, le=100_000_000)
    wage_unit: WageUnit | None = None
    pay_day: int | None = Field(default=None, ge=1, le=31)
    work_region_code: str | None = Field(default=None, max_length=12)
    work_location_text: str | None = Field(default=None, max_length=100)
    address: str | None = Field(default=None, max_length=200)
    starts_on: date | None = None
    ends_on: date | None = None
    certificates_required: list[str] | None = Field(default=None, max_length=10)
    age_min: int | None = Field(default=None, ge=0, le=100)
    age_max: int | None = Field(default=None, ge=0, le=100)
    board: bool | None = None
    lodging: bool | None = None
    social_insurance: bool | None = None
    contact: str | None = Field(default=None, max_length=100)
    fee_fixed_fen: int | None = Field(default=None, ge=0, le=100_000_000)
    fee_share_bp: int | None = Field(default=None, ge=0, le=10_000)
    status: Literal["filled", "closed"] | None = None
    reason: str | None = Field(default=None, max_length=500)


class ReviewRequest(SQLModel):
    approve: bool
    reason: str | None = Field(default=None, max_length=500)


class JobPublic(SQLModel):
    id: int
    organization_id: int
    agency_id: int | None
    title: str
    description: str
    occupation_code: str | None
    headcount: int
    wage_min_fen: int
    wage_max_fen: int
    wage_unit: str
    pay_day: int | None
    work_region_code: str
    work_location_text: str | None
    address: str | None
    starts_on: date
    ends_on: date | None
    certificates_required: list[str]
    age_min: int | None
    age_max: int | None
    board: bool
    lodging: bool
    social_insurance: bool
    contact: str | None
    fee_fixed_fen: int | None
    fee_share_bp: int | None
    status: str
    status_reason: str | None
    flags: list[FlagPublic]
    review_district_code: str
    submitted_at: datetime | None
    published_at: datetime | None
    created_at: datetime
    updated_at: datetime
