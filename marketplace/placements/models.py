"""Recommendations, placements, first-wage reports and arrears cases; the candidate
prefilter. See docs/matching.md for the states, the attribution window and masking."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Index, text
from sqlmodel import Field, SQLModel

from marketplace.clock import utcnow
from marketplace.db import UTCDateTime


class RecommendationStatus(StrEnum):
    recommended = "recommended"  # the broker sent the worker; the employer has not acted
    shortlisted = "shortlisted"  # 列入候选
    rejected = "rejected"  # the employer said no
    hired = "hired"  # the employer hired, with a start date
    onboarded = "onboarded"  # the broker confirmed the worker started: a placement
    withdrawn = "withdrawn"  # the broker (or the worker through them) pulled out
    no_show = "no_show"  # hired, but the worker did not turn up
    lapsed = "lapsed"  # unanswered past the attribution window; another broker took over


STATUS_LABELS = {
    RecommendationStatus.recommended: "已推荐",
    RecommendationStatus.shortlisted: "已入围",
    RecommendationStatus.rejected: "未录用",
    RecommendationStatus.hired: "已录用",
    RecommendationStatus.onboarded: "已到岗",
    RecommendationStatus.withdrawn: "已撤回",
    RecommendationStatus.no_show: "未到岗",
    RecommendationStatus.lapsed: "已失效",
}
# A worker may hold one of these per job at a time (a partial unique index says so).
ACTIVE_STATUSES = (
    RecommendationStatus.recommended,
    RecommendationStatus.shortlisted,
    RecommendationStatus.hired,
    RecommendationStatus.onboarded,
)
_ACTIVE_SQL = "status IN ('recommended', 'shortlisted', 'hired', 'onboarded')"


class Recommendation(SQLModel, table=True):
    __tablename__ = "recommendation"
    __table_args__ = (
        Index(
            "uq_recommendation_active",
            "job_id",
            "worker_id",
            unique=True,
            sqlite_where=text(_ACTIVE_SQL),
            postgresql_where=text(_ACTIVE_SQL),
        ),
        Index("ix_recommendation_broker_created", "broker_id", "created_at"),
        Index("ix_recommendation_job_status", "job_id", "status"),
        Index("ix_recommendation_worker", "worker_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="job.id")
    worker_id: int = Field(foreign_key="worker.id")
    broker_id: int = Field(foreign_key="broker.id")
    note: str | None = Field(default=None, max_length=500)
    status: str = Field(default=RecommendationStatus.recommended, max_length=16)
    # The recommending broker holds the worker for this job until then (7 days).
    attribution_until: datetime = Field(sa_type=UTCDateTime)
    starts_on: date | None = None  # set by the hire
    status_reason: str | None = Field(default=None, max_length=500)
    created_by: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # employer acted
    hired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Placement(SQLModel, table=True):
    """A worker who started a job through a broker's recommendation; the job's wage and
    fee are copied at confirmation (billing reads them from the event)."""

    __tablename__ = "placement"

    id: int | None = Field(default=None, primary_key=True)
    recommendation_id: int = Field(foreign_key="recommendation.id", unique=True)
    job_id: int = Field(foreign_key="job.id", index=True)
    organization_id: int = Field(foreign_key="organization.id", index=True)
    broker_id: int = Field(foreign_key="broker.id", index=True)
    worker_id: int = Field(foreign_key="worker.id", index=True)
    starts_on: date
    wage_min_fen: int
    wage_max_fen: int
    wage_unit: str = Field(max_length=8)
    fee_fixed_fen: int | None = None
    fee_share_bp: int | None = None
    confirmed_by: int | None = Field(default=None, foreign_key="user_account.id")
    confirmed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class WageReport(SQLModel, table=True):
    """The broker's follow-up of the first wage, once per placement."""

    __tablename__ = "wage_report"

    id: int | None = Field(default=None, primary_key=True)
    placement_id: int = Field(foreign_key="placement.id", unique=True)
    paid_in_full: bool
    paid_on_time: bool
    amount_paid_fen: int | None = None
    note: str | None = Field(default=None, max_length=500)
    reported_by: int | None = Field(default=None, foreign_key="user_account.id")
    reported_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ArrearsStatus(StrEnum):
    open = "open"
    resolved = "resolved"


class ArrearsCase(SQLModel, table=True):
    """欠薪: a first wage not paid in full. The tasks issue turns ``arrears.opened`` into
    a rights-protection task; open cases lower the employer's standing."""

    __tablename__ = "arrears_case"
    __table_args__ = (Index("ix_arrears_org_status", "organization_id", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    placement_id: int = Field(foreign_key="placement.id", unique=True)
    wage_report_id: int = Field(foreign_key="wage_report.id")
    organization_id: int = Field(foreign_key="organization.id")
    broker_id: int = Field(foreign_key="broker.id")
    worker_id: int = Field(foreign_key="worker.id")
    region_code: str = Field(foreign_key="region.code", max_length=12)
    owed_fen: int | None = None  # what the broker knows is missing, if they know
    status: str = Field(default=ArrearsStatus.open, max_length=16)
    opened_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WorkerOccupation(SQLModel, table=True):
    """The candidate prefilter: one row per (live worker, occupation), with the columns
    candidate search filters on, kept by the ``worker.changed`` handler
    (``marketplace.placements.candidates``). A JSON list can't be indexed on both
    databases; this can."""

    __tablename__ = "worker_occupation"
    __table_args__ = (
        Index("ix_worker_occupation_pick", "occupation_key", "consent", "verified_at"),
        Index("ix_worker_occupation_recent", "occupation_key", "verified_at"),
        Index("ix_worker_occupation_village", "occupation_key", "village_code"),
    )

    worker_id: int = Field(foreign_key="worker.id", primary_key=True)
    occupation_key: str = Field(max_length=32, primary_key=True)
    village_code: str = Field(max_length=12)
    consent: bool = False
    verified_at: datetime = Field(sa_type=UTCDateTime)  # 1970 when never verified


# --- request and response schemas ------------------------------------------------------


class RecommendationCreate(SQLModel):
    job_id: int = Field(ge=1, le=2_147_483_647)
    worker_id: int = Field(ge=1, le=2_147_483_647)
    note: str | None = Field(default=None, max_length=500)


class StatusChange(SQLModel):
    status: RecommendationStatus
    starts_on: date | None = None  # required for hired
    reason: str | None = Field(default=None, max_length=500)


class WageReportCreate(SQLModel):
    paid_in_full: bool
    paid_on_time: bool
    amount_paid_fen: int | None = Field(default=None, ge=0, le=100_000_000)
    owed_fen: int | None = Field(default=None, ge=0, le=100_000_000)
    note: str | None = Field(default=None, max_length=500)


class WorkerCard(SQLModel):
    """A worker as the reader may see them: masked for employers until recommended."""

    id: int
    name: str
    phone: str | None
    gender: str | None
    age: int | None
    village: str  # township-level place name for employers, the village for brokers
    skills: list[str]
    occupation_names: list[str]
    certificates: list[str]
    masked: bool
    consent: bool  # to being recommended; without it a broker may not recommend


class JobCard(SQLModel):
    id: int
    title: str
    organization_name: str
    work_place: str
    wage: str
    starts_on: date
    status: str


class ComponentOut(SQLModel):
    name: str
    score: float
    weight: int
    reason: str


class CandidateOut(SQLModel):
    score: float
    components: list[ComponentOut]
    worker: WorkerCard
    recommendation_id: int | None = None
    recommendation_status: str | None = None


class MatchOut(SQLModel):
    score: float
    components: list[ComponentOut]
    job: JobCard
    recommendation_id: int | None = None
    recommendation_status: str | None = None


class RecommendationPublic(SQLModel):
    id: int
    job_id: int
    worker_id: int
    broker_id: int
    broker_name: str
    note: str | None
    status: str
    status_label: str
    attribution_until: datetime
    starts_on: date | None
    status_reason: str | None
    created_at: datetime
    placement_id: int | None = None
    worker: WorkerCard | None = None
    job: JobCard | None = None


class PlacementPublic(SQLModel):
    id: int
    recommendation_id: int
    job_id: int
    organization_id: int
    broker_id: int
    worker_id: int
    starts_on: date
    confirmed_at: datetime
    wage_report_due_on: date
    wage_report: WageReportPublic | None = None


class WageReportPublic(SQLModel):
    id: int
    placement_id: int
    paid_in_full: bool
    paid_on_time: bool
    amount_paid_fen: int | None
    note: str | None
    reported_at: datetime
    arrears_case_id: int | None = None


class Standing(SQLModel):
    """An employer's record with workers placed through the platform."""

    organization_id: int
    placements: int
    wage_reports: int
    paid_in_full_on_time: int
    paid_late: int
    open_arrears: int
    arrears_total: int
    summary: str  # one line in Chinese for reviewers and brokers
    warning: bool  # any open arrears case
