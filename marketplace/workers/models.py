"""The worker register's tables and their request/response schemas.

Sensitive values (resident ID number, phone, certificate numbers) are stored only
as ciphertext (``*_enc``) beside a keyed hash for lookups; see docs/workers.md.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Index, Text
from sqlmodel import Field, SQLModel

from marketplace.clock import utcnow
from marketplace.db import UTCDateTime


class EmploymentStatus(StrEnum):
    employed_local = "employed_local"
    employed_away = "employed_away"
    seeking = "seeking"
    not_in_labour_force = "not_in_labour_force"
    unknown = "unknown"


class WageUnit(StrEnum):
    hour = "hour"
    day = "day"
    month = "month"
    piece = "piece"


class Mobility(StrEnum):
    local = "local"
    chongqing = "chongqing"
    anywhere = "anywhere"


class ConsentMethod(StrEnum):
    written = "书面"
    oral = "口头"
    electronic = "电子"


class DeleteReason(StrEnum):
    person_request = "person_request"
    deceased = "deceased"
    other = "other"


MERGED = "merged"  # deleted_reason of a record merged into another


class Worker(SQLModel, table=True):
    __tablename__ = "worker"
    __table_args__ = (
        Index("ix_worker_village_live", "hukou_village_code", "deleted_at"),
        Index("ix_worker_broker_live", "broker_id", "deleted_at"),
        Index("ix_worker_village_birth", "hukou_village_code", "birth_date"),
        # The list (docs/workers.md, "Speed"): a page's ids come from these alone
        # (index-only), by region range, status and name, before any row is read.
        Index(
            "ix_worker_status_village",
            "employment_status",
            "hukou_village_code",
            "deleted_at",
            "id",
        ),
        Index("ix_worker_village_name", "hukou_village_code", "deleted_at", "name", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    broker_id: int = Field(foreign_key="broker.id")
    # Personal data; every one of these is nulled or emptied when the record is deleted.
    name: str | None = Field(default=None, max_length=32, index=True)
    id_number_enc: str | None = Field(default=None, max_length=255)
    id_number_hash: str | None = Field(default=None, max_length=64, unique=True)
    gender: str | None = Field(default=None, max_length=8)
    birth_date: date | None = None
    phone_enc: str | None = Field(default=None, max_length=255)
    phone_hash: str | None = Field(default=None, max_length=64, index=True)
    current_region_code: str | None = Field(default=None, foreign_key="region.code", max_length=12)
    current_location_text: str | None = Field(default=None, max_length=100)
    skills: list[str] = Field(default_factory=list, sa_type=JSON)
    occupation_codes: list[str] = Field(default_factory=list, sa_type=JSON)
    # [{type, number_enc, expires_on}]
    certificates: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    wage_min_fen: int | None = None
    wage_max_fen: int | None = None
    wage_unit: str | None = Field(default=None, max_length=8)
    available_from: date | None = None
    mobility: str | None = Field(default=None, max_length=16)
    training_wishes: list[str] = Field(default_factory=list, sa_type=JSON)
    note: str | None = Field(default=None, max_length=500)
    consent_to_recommend: bool = False
    consent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    consent_method: str | None = Field(default=None, max_length=8)
    consent_recorded_by: int | None = Field(default=None, foreign_key="user_account.id")
    # Kept on the tombstone, so counts per village, broker and status stay right.
    hukou_village_code: str = Field(foreign_key="region.code", max_length=12)
    employment_status: str = Field(default=EmploymentStatus.unknown, max_length=24)
    last_verified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    deleted_reason: str | None = Field(default=None, max_length=16)
    merged_into_id: int | None = Field(default=None, foreign_key="worker.id")


class WorkerChange(SQLModel, table=True):
    """One field's old and new value in one change. Sensitive values are ciphertext;
    the rest JSON text. A merge re-points the other record's rows here, keeping
    ``origin_worker_id``."""

    __tablename__ = "worker_change"
    __table_args__ = (Index("ix_worker_change_worker_at", "worker_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    worker_id: int = Field(foreign_key="worker.id")
    origin_worker_id: int = Field(foreign_key="worker.id")
    action: str = Field(max_length=16)  # create | update | merge | delete | verify
    field: str = Field(max_length=32)
    sensitive: bool = False
    old_value: str | None = Field(default=None, sa_type=Text)
    new_value: str | None = Field(default=None, sa_type=Text)
    actor_user_id: int | None = Field(default=None, foreign_key="user_account.id")
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class DuplicateDismissal(SQLModel, table=True):
    """A flagged pair the broker said are two different people (low id first)."""

    __tablename__ = "worker_duplicate_dismissal"

    worker_a_id: int = Field(foreign_key="worker.id", primary_key=True)
    worker_b_id: int = Field(foreign_key="worker.id", primary_key=True)
    dismissed_by: int | None = Field(default=None, foreign_key="user_account.id")
    dismissed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# --- request and response schemas ------------------------------------------------------


class CertificateIn(SQLModel):
    type: str = Field(min_length=1, max_length=32)
    number: str = Field(min_length=1, max_length=64)
    expires_on: date | None = None


class CertificateOut(SQLModel):
    type: str
    number: str  # masked unless revealed
    expires_on: date | None


class WorkerCreate(SQLModel):
    """Fields a caller may set. Unknown fields (``id``, ``broker_id``, ``gender``…) are
    ignored by the schema and so never stored."""

    name: str = Field(min_length=1, max_length=32)
    id_number: str = Field(max_length=32)
    phone: str | None = Field(default=None, max_length=32)
    hukou_village_code: str = Field(max_length=12)
    current_region_code: str | None = Field(default=None, max_length=12)
    current_location_text: str | None = Field(default=None, max_length=100)
    employment_status: EmploymentStatus = EmploymentStatus.unknown
    skills: list[str] = Field(default_factory=list, max_length=30)
    certificates: list[CertificateIn] = Field(default_factory=list, max_length=20)
    wage_min_fen: int | None = Field(default=None, ge=0)
    wage_max_fen: int | None = Field(default=None, ge=0)
    wage_unit: WageUnit | None = None
    available_from: date | None = None
    mobility: Mobility | None = None
    training_wishes: list[str] = Field(default_factory=list, max_length=10)
    consent_to_recommend: bool = False
    consent_method: ConsentMethod | None = None
    note: str | None = Field(default=None, max_length=500)


class WorkerUpdate(SQLModel):
    """Every field optional; only the fields sent are changed (``null`` clears)."""

    name: str | None = Field(default=None, min_length=1, max_length=32)
    id_number: str | None = Field(default=None, max_length=32)
    phone: str | None = Field(default=None, max_length=32)
    hukou_village_code: str | None = Field(default=None, max_length=12)
    current_region_code: str | None = Field(default=None, max_length=12)
    current_location_text: str | None = Field(default=None, max_length=100)
    employment_status: EmploymentStatus | None = None
    skills: list[str] | None = Field(default=None, max_length=30)
    certificates: list[CertificateIn] | None = Field(default=None, max_length=20)
    wage_min_fen: int | None = Field(default=None, ge=0)
    wage_max_fen: int | None = Field(default=None, ge=0)
    wage_unit: WageUnit | None = None
    available_from: date | None = None
    mobility: Mobility | None = None
    training_wishes: list[str] | None = Field(default=None, max_length=10)
    consent_to_recommend: bool | None = None
    consent_method: ConsentMethod | None = None
    note: str | None = Field(default=None, max_length=500)


class WorkerPublic(SQLModel):
    id: int
    name: str
    id_number_masked: str
    id_number: str | None = None  # only with ?reveal=true, for those who may see it
    phone_masked: str | None
    phone: str | None = None
    gender: str
    birth_date: date
    hukou_village_code: str
    current_region_code: str | None
    current_location_text: str | None
    employment_status: str
    skills: list[str]
    occupation_codes: list[str]
    certificates: list[CertificateOut]
    wage_min_fen: int | None
    wage_max_fen: int | None
    wage_unit: str | None
    available_from: date | None
    mobility: str | None
    training_wishes: list[str]
    consent_to_recommend: bool
    consent_at: datetime | None
    consent_method: str | None
    consent_recorded_by: int | None
    note: str | None
    last_verified_at: datetime | None
    broker_id: int
    created_at: datetime
    updated_at: datetime


class WorkerChangePublic(SQLModel):
    id: int
    worker_id: int
    origin_worker_id: int
    action: str
    field: str
    old_value: Any
    new_value: Any
    actor_user_id: int | None
    at: datetime


class DuplicatePair(SQLModel):
    a: WorkerPublic
    b: WorkerPublic
    reasons: list[str]  # "same_phone_similar_name" | "same_village_birth_date"
    name_similarity: float


class DeleteRequest(SQLModel):
    reason: DeleteReason


class MergeRequest(SQLModel):
    other_id: int = Field(ge=1, le=2_147_483_647)


class DismissRequest(SQLModel):
    a: int = Field(ge=1, le=2_147_483_647)
    b: int = Field(ge=1, le=2_147_483_647)


class ImportJobStatus(StrEnum):
    running = "running"
    done = "done"
    failed = "failed"  # the file as a whole was refused, or the import broke off with an error
    interrupted = "interrupted"  # the server stopped mid-import (docs/workers.md)


class ImportJob(SQLModel, table=True):
    """An import started from the page, run in the background: its progress (updated in
    the same transaction as each batch) and, once finished, its report."""

    __tablename__ = "worker_import_job"
    __table_args__ = (Index("ix_worker_import_job_broker", "broker_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    broker_id: int = Field(foreign_key="broker.id")
    user_id: int | None = Field(default=None, foreign_key="user_account.id")
    filename: str = Field(max_length=255)
    file_format: str = Field(max_length=8)
    status: str = Field(default=ImportJobStatus.running, max_length=16)
    rows_total: int | None = None  # counted before the import starts
    rows_done: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    error_rows: int = 0
    # The first 1,000 refused rows: [{row, column, message}] (no personal data).
    errors: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    message: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    heartbeat_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
