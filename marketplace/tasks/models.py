"""Public-service tasks (公共服务任务): types and their versions, tasks, submissions,
evidence, the per-person fraud register, spot checks. See docs/tasks.md."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from marketplace.clock import utcnow
from marketplace.db import UTCDateTime


class EvidenceKind(StrEnum):
    photo = "photo"  # 现场照片
    signed_form = "signed_form"  # 签字表单
    person_list = "person_list"  # 服务对象名单（台账中的劳动者）
    attendance_sheet = "attendance_sheet"  # 签到表


EVIDENCE_LABELS = {
    "photo": "现场照片",
    "signed_form": "签字表单",
    "person_list": "服务对象名单",
    "attendance_sheet": "签到表",
}


class TaskStatus(StrEnum):
    open = "open"
    claimed = "claimed"
    submitted = "submitted"
    township_checked = "township_checked"
    approved = "approved"
    partly_approved = "partly_approved"
    rejected = "rejected"
    closed = "closed"
    expired = "expired"


STATUS_LABELS = {
    "open": "待领取",
    "claimed": "已领取",
    "submitted": "已提交",
    "township_checked": "乡镇已初审",
    "approved": "已通过",
    "partly_approved": "部分通过",
    "rejected": "已退回",
    "closed": "已关闭",
    "expired": "已过期",
}

# A claim still in the broker's hands (counts against the claim limit).
OPEN_CLAIM_STATES = frozenset(
    {TaskStatus.claimed, TaskStatus.submitted, TaskStatus.township_checked, TaskStatus.rejected}
)
# Waiting for an officer.
PENDING_STATES = frozenset({TaskStatus.submitted, TaskStatus.township_checked})


class SubmissionStatus(StrEnum):
    pending = "pending"  # waiting for the township (if the district asks) or district
    township_checked = "township_checked"
    approved = "approved"
    partly_approved = "partly_approved"
    rejected = "rejected"
    reversed = "reversed"  # failed a spot check after approval


class TaskSource(StrEnum):
    published = "published"
    generated = "generated"  # stale register records, monthly
    arrears = "arrears"  # an arrears case (欠薪) from the jobs package


class TaskType(SQLModel, table=True):
    """One version of a service item. A rate change writes a new version; a task keeps
    the version that was current when it was published."""

    __tablename__ = "task_type"
    __table_args__ = (UniqueConstraint("code", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=40, index=True)
    version: int = 1
    name: str = Field(max_length=64)
    unit: str = Field(max_length=16)  # 人、次、件、场…
    rate_fen: int = Field(ge=0)
    funding_source: str = Field(max_length=40)
    evidence_kinds: list[str] = Field(default_factory=list, sa_type=JSON)
    per_person: bool = False
    welfare_post_covers: bool = False
    department: str | None = Field(default=None, max_length=32)  # 购买服务 department
    description: str | None = Field(default=None, max_length=500)
    active: bool = True
    current: bool = True  # the newest version of its code
    effective_from: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_by: int | None = Field(default=None, foreign_key="user_account.id")


class DistrictTaskSetting(SQLModel, table=True):
    """Per-district choices: whether townships check evidence first, the claim limit."""

    __tablename__ = "task_district_setting"

    district_code: str = Field(primary_key=True, foreign_key="region.code", max_length=12)
    township_check: bool = False
    claim_limit: int = 10
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ServiceTask(SQLModel, table=True):
    __tablename__ = "service_task"
    __table_args__ = (
        Index("ix_service_task_status_region", "status", "region_code"),
        Index("ix_service_task_broker_status", "broker_id", "status"),
        # A broker's own tasks, newest first, read from the index alone: without it
        # SQLite walked the whole table backwards by id to find a broker's few.
        Index("ix_service_task_broker_id", "broker_id", "id"),
        Index("ix_service_task_district_period", "district_code", "period"),
    )

    id: int | None = Field(default=None, primary_key=True)
    task_type_id: int = Field(foreign_key="task_type.id")
    task_type_code: str = Field(max_length=40)
    region_code: str = Field(foreign_key="region.code", max_length=12)  # village or township
    district_code: str = Field(max_length=6)
    quantity: int = Field(ge=1)
    deadline: datetime = Field(sa_type=UTCDateTime)
    period: str = Field(max_length=7)  # YYYY-MM of the deadline, Asia/Shanghai
    instructions: str = Field(default="", max_length=2000)
    status: str = Field(default=TaskStatus.open, max_length=20)
    source: str = Field(default=TaskSource.published, max_length=16)
    # Generated and event-made tasks: one per key (idempotent re-runs).
    source_key: str | None = Field(default=None, max_length=64, unique=True)
    batch_id: str | None = Field(default=None, max_length=32, index=True)
    assigned: bool = False  # dispatched to one broker rather than open to claim
    broker_id: int | None = Field(default=None, foreign_key="broker.id")
    claimed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    approved_quantity: int | None = None
    approved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reversed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    published_by: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class TaskSubmission(SQLModel, table=True):
    __tablename__ = "task_submission"
    __table_args__ = (
        UniqueConstraint("task_id", "upload_key"),
        # The review queue: a district's pending rows, oldest first.
        Index("ix_task_submission_queue", "district_code", "status", "submitted_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="service_task.id", index=True)
    broker_id: int = Field(foreign_key="broker.id", index=True)
    district_code: str = Field(max_length=6)
    region_code: str = Field(max_length=12)
    quantity: int = Field(ge=1)
    note: str = Field(default="", max_length=1000)
    worker_ids: list[int] = Field(default_factory=list, sa_type=JSON)
    upload_key: str = Field(max_length=64)  # client upload id / Idempotency-Key
    status: str = Field(default=SubmissionStatus.pending, max_length=20)
    submitted_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    township_checked_by: int | None = Field(default=None, foreign_key="user_account.id")
    township_checked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    approved_quantity: int | None = None
    rate_fen: int | None = None
    amount_fen: int | None = None
    decided_by: int | None = Field(default=None, foreign_key="user_account.id")
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    comment: str | None = Field(default=None, max_length=500)


class EvidenceFile(SQLModel, table=True):
    """One file of a submission. The bytes live under the media directory by content
    hash (shared by identical uploads); location and time from EXIF are kept here for
    reviewers and stripped from the copy that is served."""

    __tablename__ = "evidence_file"
    __table_args__ = (UniqueConstraint("submission_id", "sha256"),)

    id: int | None = Field(default=None, primary_key=True)
    submission_id: int = Field(foreign_key="task_submission.id", index=True)
    sha256: str = Field(max_length=64, index=True)
    media_type: str = Field(max_length=40)
    size: int
    filename: str = Field(default="", max_length=120)
    width: int | None = None
    height: int | None = None
    gps_lat: float | None = None
    gps_lon: float | None = None
    taken_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PersonCount(SQLModel, table=True):
    """The fraud check: a person counts once per task type and period, whoever submits."""

    __tablename__ = "task_person_count"
    __table_args__ = (UniqueConstraint("task_type_code", "period", "worker_id"),)

    id: int | None = Field(default=None, primary_key=True)
    task_type_code: str = Field(max_length=40)
    period: str = Field(max_length=7)
    worker_id: int = Field(foreign_key="worker.id")
    submission_id: int = Field(foreign_key="task_submission.id", index=True)
    broker_id: int = Field(foreign_key="broker.id")


class PersonConflict(SQLModel, table=True):
    """A refused attempt to count a person already counted: shown to the reviewer of
    the submission that holds the person, and weighed by spot checks."""

    __tablename__ = "task_person_conflict"

    id: int | None = Field(default=None, primary_key=True)
    task_type_code: str = Field(max_length=40)
    period: str = Field(max_length=7)
    worker_id: int = Field(foreign_key="worker.id")
    holding_submission_id: int = Field(foreign_key="task_submission.id", index=True)
    holding_broker_id: int = Field(foreign_key="broker.id")
    attempt_task_id: int = Field(foreign_key="service_task.id", index=True)
    attempt_broker_id: int = Field(foreign_key="broker.id", index=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SpotCheck(SQLModel, table=True):
    __tablename__ = "spot_check"

    id: int | None = Field(default=None, primary_key=True)
    region_code: str = Field(foreign_key="region.code", max_length=12)
    period: str = Field(max_length=7)
    sample_size: int
    seed: int
    population: int  # approved tasks the sample was drawn from
    drawn_by: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SpotCheckItem(SQLModel, table=True):
    __tablename__ = "spot_check_item"
    __table_args__ = (UniqueConstraint("spot_check_id", "task_id"),)

    id: int | None = Field(default=None, primary_key=True)
    spot_check_id: int = Field(foreign_key="spot_check.id", index=True)
    task_id: int = Field(foreign_key="service_task.id", index=True)
    submission_id: int = Field(foreign_key="task_submission.id")
    broker_id: int = Field(foreign_key="broker.id", index=True)
    weight: float
    reasons: list[str] = Field(default_factory=list, sa_type=JSON)
    result: str = Field(default="pending", max_length=8)  # pending | pass | fail
    notes: str | None = Field(default=None, max_length=1000)
    checked_by: int | None = Field(default=None, foreign_key="user_account.id")
    checked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


# --- request and response schemas ------------------------------------------------------


class TaskTypeCreate(SQLModel):
    code: str = Field(min_length=2, max_length=40, schema_extra={"pattern": r"^[a-z][a-z0-9_]+$"})
    name: str = Field(min_length=1, max_length=64)
    unit: str = Field(min_length=1, max_length=16)
    rate_fen: int = Field(ge=0, le=10_000_000)
    funding_source: str = Field(max_length=40)
    evidence_kinds: list[EvidenceKind] = Field(default_factory=list, max_length=4)
    per_person: bool = False
    welfare_post_covers: bool = False
    department: str | None = Field(default=None, max_length=32)
    description: str | None = Field(default=None, max_length=500)


class TaskTypeUpdate(SQLModel):
    """A change writes a new version; tasks already published keep theirs."""

    name: str | None = Field(default=None, min_length=1, max_length=64)
    unit: str | None = Field(default=None, min_length=1, max_length=16)
    rate_fen: int | None = Field(default=None, ge=0, le=10_000_000)
    funding_source: str | None = Field(default=None, max_length=40)
    evidence_kinds: list[EvidenceKind] | None = Field(default=None, max_length=4)
    per_person: bool | None = None
    welfare_post_covers: bool | None = None
    department: str | None = Field(default=None, max_length=32)
    description: str | None = Field(default=None, max_length=500)
    active: bool | None = None


class TaskTypePublic(SQLModel):
    id: int
    code: str
    version: int
    name: str
    unit: str
    rate_fen: int
    funding_source: str
    evidence_kinds: list[str]
    per_person: bool
    welfare_post_covers: bool
    department: str | None
    description: str | None
    active: bool
    current: bool
    effective_from: datetime


class TaskCreate(SQLModel):
    task_type: str = Field(min_length=2, max_length=40)
    region_code: str = Field(schema_extra={"pattern": r"^\d{2,12}$"})
    quantity: int = Field(ge=1, le=100_000)
    deadline: datetime
    instructions: str = Field(default="", max_length=2000)
    # Dispatch to one broker instead of opening the task to the region's brokers.
    broker_id: int | None = Field(default=None, ge=1, le=2_147_483_647)


class BulkResult(SQLModel):
    batch_id: str
    created: int


class TaskPublic(SQLModel):
    id: int
    task_type: str
    task_type_version: int
    task_type_name: str
    unit: str
    rate_fen: int
    per_person: bool
    evidence_kinds: list[str]
    region_code: str
    district_code: str
    quantity: int
    deadline: datetime
    period: str
    instructions: str
    status: str
    source: str
    assigned: bool
    broker_id: int | None
    claimed_at: datetime | None
    approved_quantity: int | None
    approved_at: datetime | None
    created_at: datetime


class EvidencePublic(SQLModel):
    id: int
    media_type: str
    size: int
    filename: str
    width: int | None
    height: int | None
    url: str
    # Only for reviewers (officers); null for everyone else.
    gps_lat: float | None = None
    gps_lon: float | None = None
    taken_at: datetime | None = None


class ConflictPublic(SQLModel):
    worker_id: int
    other_broker_id: int
    other_task_id: int
    at: datetime


class SubmissionPublic(SQLModel):
    id: int
    task_id: int
    broker_id: int
    quantity: int
    note: str
    worker_ids: list[int]
    status: str
    submitted_at: datetime
    approved_quantity: int | None
    amount_fen: int | None
    decided_at: datetime | None
    comment: str | None
    evidence: list[EvidencePublic]
    conflicts: list[ConflictPublic] = Field(default_factory=list)
    replayed: bool = False  # a retried upload that found its first submission


class ReviewDecision(StrEnum):
    approve = "approve"
    reject = "reject"
    township_pass = "township_pass"  # noqa: S105  (the township's first look)


class ReviewRequest(SQLModel):
    decision: ReviewDecision
    approved_quantity: int | None = Field(default=None, ge=0, le=100_000)
    comment: str | None = Field(default=None, max_length=500)


class BulkApproveRequest(SQLModel):
    task_ids: list[int] = Field(min_length=1, max_length=200)


class BulkApproveResult(SQLModel):
    approved: list[int]
    skipped: dict[str, str]  # task id -> why it is not clean


class QueueItem(SQLModel):
    submission_id: int
    task_id: int
    task_type: str
    task_type_name: str
    region_code: str
    broker_id: int
    quantity: int
    status: str
    submitted_at: datetime
    evidence_count: int
    conflict_count: int


class SpotCheckCreate(SQLModel):
    region_code: str = Field(schema_extra={"pattern": r"^\d{2,12}$"})
    period: str = Field(schema_extra={"pattern": r"^\d{4}-(0[1-9]|1[0-2])$"})
    sample_size: int = Field(ge=1, le=500)
    seed: int | None = Field(default=None, ge=0, le=2**62)


class SpotCheckItemPublic(SQLModel):
    id: int
    task_id: int
    submission_id: int
    broker_id: int
    weight: float
    reasons: list[str]
    result: str
    notes: str | None
    checked_at: datetime | None


class SpotCheckPublic(SQLModel):
    id: int
    region_code: str
    period: str
    sample_size: int
    seed: int
    population: int
    created_at: datetime
    items: list[SpotCheckItemPublic] = Field(default_factory=list)


class SpotCheckResult(SQLModel):
    task_id: int = Field(ge=1, le=2_147_483_647)
    result: str = Field(schema_extra={"pattern": r"^(pass|fail)$"})
    notes: str | None = Field(default=None, max_length=1000)


def public_type(row: TaskType) -> TaskTypePublic:
    assert row.id is not None
    return TaskTypePublic.model_validate(row, from_attributes=True)


def public_task(task: ServiceTask, ttype: TaskType) -> TaskPublic:
    assert task.id is not None
    data: dict[str, Any] = {
        "id": task.id,
        "task_type": ttype.code,
        "task_type_version": ttype.version,
        "task_type_name": ttype.name,
        "unit": ttype.unit,
        "rate_fen": ttype.rate_fen,
        "per_person": ttype.per_person,
        "evidence_kinds": list(ttype.evidence_kinds),
    }
    for name in (
        "region_code",
        "district_code",
        "quantity",
        "deadline",
        "period",
        "instructions",
        "status",
        "source",
        "assigned",
        "broker_id",
        "claimed_at",
        "approved_quantity",
        "approved_at",
        "created_at",
    ):
        data[name] = getattr(task, name)
    return TaskPublic(**data)
