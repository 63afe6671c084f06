"""Brokers (劳务经纪人): who is active in which village, and what their post covers.

The brokers issue adds applications, certification and status history around this
table; coverage counts ``status == active`` here. The public-welfare post fields are
read by billing: no task subsidy for a task type the post already pays for.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from marketplace.clock import utcnow
from marketplace.db import UTCDateTime


class BrokerStatus(StrEnum):
    active = "active"
    suspended = "suspended"
    retired = "retired"
    eliminated = "eliminated"


class Broker(SQLModel, table=True):
    __tablename__ = "broker"
    __table_args__ = (Index("ix_broker_village_status", "village_code", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int | None = Field(default=None, foreign_key="user_account.id", unique=True)
    name: str = Field(max_length=64)
    village_code: str = Field(foreign_key="region.code", max_length=12)
    status: str = Field(default=BrokerStatus.active, max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # 经纪人编号, given at certification.
    broker_no: str | None = Field(default=None, max_length=32, unique=True)
    certified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    key_broker: bool = False  # 重点骨干
    # 公益性岗位: the task types the post covers and its monthly subsidy in fen.
    welfare_post: bool = False
    welfare_post_task_types: list[str] = Field(default_factory=list, sa_type=JSON)
    welfare_post_monthly_fen: int | None = None
    status_reason: str | None = Field(default=None, max_length=500)


class BrokerVillage(SQLModel, table=True):
    """A village a broker serves. Every broker has a row for the home village;
    more rows are villages assigned to them on top (the brokers issue manages them)."""

    __tablename__ = "broker_village"
    __table_args__ = (UniqueConstraint("broker_id", "village_code"),)

    id: int | None = Field(default=None, primary_key=True)
    broker_id: int = Field(foreign_key="broker.id", index=True)
    village_code: str = Field(foreign_key="region.code", max_length=12, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# --- applications (docs/brokers.md) ----------------------------------------------------


class ApplicationStatus(StrEnum):
    submitted = "submitted"  # waiting for the village officer's recommendation
    recommended = "recommended"  # waiting for the township officer's review
    township_reviewed = "township_reviewed"  # waiting for the district admin's approval
    district_approved = "district_approved"  # approved; waiting to be sent to training
    in_training = "in_training"  # in training; waiting to pass the exam
    exam_passed = "exam_passed"  # waiting for the district admin to certify
    certified = "certified"  # final: a Broker row exists
    rejected = "rejected"  # final: the reason is shown to the applicant
    returned = "returned"  # sent back for more information; the applicant resubmits


class Background(StrEnum):
    village_cadre = "village_cadre"  # 村社干部（财政供养人员除外）
    grid_worker = "grid_worker"  # 网格员
    social_security_clerk = "social_security_clerk"  # 基层社保员
    hr_company_staff = "hr_company_staff"  # 人力资源企业骨干
    rural_leader = "rural_leader"  # 农村致富带头人
    labour_broker = "labour_broker"  # 劳务经纪能人
    other = "other"  # 其他


class BrokerApplication(SQLModel, table=True):
    """A villager's application to become a broker, from submission to certification.

    ``open_id_hash`` holds the ID number's lookup hash while the application is open
    and is cleared when it ends (rejected or certified): a unique column that keeps
    one open application per ID number even under concurrent submissions.
    """

    __tablename__ = "broker_application"
    __table_args__ = (
        # Officers' queues: one region prefix, one state, oldest first.
        Index("ix_broker_application_status_village", "status", "village_code", "status_since"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tracking_code: str = Field(max_length=16, unique=True)
    name: str = Field(max_length=32)
    id_number_enc: str = Field(max_length=255)
    id_number_hash: str = Field(max_length=64, index=True)
    open_id_hash: str | None = Field(default=None, max_length=64, unique=True)
    phone_enc: str = Field(max_length=255)
    phone_hash: str = Field(max_length=64)
    village_code: str = Field(foreign_key="region.code", max_length=12)
    background: str = Field(max_length=32)
    computer_skills: bool = False
    smartphone_skills: bool = False
    enough_time: bool = False
    not_on_public_payroll: bool = False
    note: str | None = Field(default=None, max_length=500)
    status: str = Field(default=ApplicationStatus.submitted, max_length=24)
    status_since: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # The state a returned application goes back to when the applicant resubmits.
    returned_from: str | None = Field(default=None, max_length=24)
    # The last reason given to the applicant (rejection or request for information).
    status_reason: str | None = Field(default=None, max_length=500)
    exam_attempt_id: int | None = None
    exam_score: int | None = None
    broker_id: int | None = Field(default=None, foreign_key="broker.id")
    submitted_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ApplicationDecision(SQLModel, table=True):
    """One step in an application's history: who moved it from which state to which, and why."""

    __tablename__ = "broker_application_decision"
    __table_args__ = (Index("ix_broker_application_decision_app_at", "application_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    application_id: int = Field(foreign_key="broker_application.id")
    # submit | approve | reject | return | resubmit | exam_passed
    action: str = Field(max_length=16)
    from_status: str | None = Field(default=None, max_length=24)
    to_status: str = Field(max_length=24)
    comment: str | None = Field(default=None, max_length=500)
    actor_user_id: int | None = Field(default=None, foreign_key="user_account.id")
    actor_role: str = Field(max_length=32)  # "applicant" and "system" besides the roles
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class BrokerStatusChange(SQLModel, table=True):
    """A broker's status history: suspend, reinstate, retire, eliminate (and certify)."""

    __tablename__ = "broker_status_change"

    id: int | None = Field(default=None, primary_key=True)
    broker_id: int = Field(foreign_key="broker.id", index=True)
    old_status: str | None = Field(default=None, max_length=16)
    new_status: str = Field(max_length=16)
    reason: str = Field(max_length=500)
    actor_user_id: int | None = Field(default=None, foreign_key="user_account.id")
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# --- request and response schemas ------------------------------------------------------


class ApplicationCreate(SQLModel):
    """The public application form (the ID number is checked as in the worker register)."""

    name: str = Field(max_length=32)
    id_number: str = Field(max_length=32)
    phone: str = Field(max_length=20)
    village_code: str = Field(max_length=12)
    background: str = Field(max_length=32)
    computer_skills: bool = False
    smartphone_skills: bool = False
    enough_time: bool = False
    not_on_public_payroll: bool = False
    note: str | None = Field(default=None, max_length=500)


class ApplicationCreated(SQLModel):
    id: int
    tracking_code: str
    status: str


class ApplicationResubmit(SQLModel):
    """A returned application, corrected: found by tracking code and the phone on file."""

    tracking_code: str = Field(max_length=32)
    phone: str = Field(max_length=20)
    application: ApplicationCreate


class DecisionPublic(SQLModel):
    action: str
    from_status: str | None
    to_status: str
    comment: str | None
    actor_role: str
    at: datetime


class ApplicationTracked(SQLModel):
    """What the applicant sees: their own answers (ID masked) and the whole history."""

    id: int
    tracking_code: str
    name: str
    id_number: str  # masked
    village_code: str
    village_name: str
    background: str
    status: str
    status_label: str
    status_reason: str | None
    submitted_at: datetime
    broker_no: str | None
    history: list[DecisionPublic]


class ApplicationPublic(SQLModel):
    """What reviewing officers see; ID number and phone masked."""

    id: int
    tracking_code: str
    name: str
    id_number: str
    phone: str
    village_code: str
    background: str
    computer_skills: bool
    smartphone_skills: bool
    enough_time: bool
    not_on_public_payroll: bool
    note: str | None
    status: str
    status_since: datetime
    status_reason: str | None
    returned_from: str | None
    exam_score: int | None
    broker_id: int | None
    submitted_at: datetime
    history: list[DecisionPublic] | None = None


class DecisionRequest(SQLModel):
    decision: str = Field(max_length=16)
    comment: str | None = Field(default=None, max_length=500)


class BulkDecisionRequest(SQLModel):
    ids: list[int] = Field(min_length=1, max_length=200)
    decision: str = Field(max_length=16)
    comment: str | None = Field(default=None, max_length=500)


class Credentials(SQLModel):
    """The certified broker's login, shown once to the certifying district admin."""

    username: str
    initial_password: str


class DecisionResult(SQLModel):
    application: ApplicationPublic
    credentials: Credentials | None = None


class BulkItemResult(SQLModel):
    id: int
    ok: bool
    status: str | None = None
    error: str | None = None
    credentials: Credentials | None = None


class BrokerPublic(SQLModel):
    id: int
    user_id: int | None
    username: str | None
    name: str
    broker_no: str | None
    village_code: str
    village_name: str
    villages: list[str]  # home village first, then assigned ones
    status: str
    status_reason: str | None
    certified_at: datetime | None
    key_broker: bool
    welfare_post: bool
    welfare_post_task_types: list[str]
    welfare_post_monthly_fen: int | None
    created_at: datetime


class BrokerUpdate(SQLModel):
    """Flags and assigned villages; every field optional (districts and the city only)."""

    key_broker: bool | None = None
    welfare_post: bool | None = None
    welfare_post_task_types: list[str] | None = Field(default=None, max_length=20)
    welfare_post_monthly_fen: int | None = Field(default=None, ge=0, le=10_000_000)
    # The villages assigned on top of the home village (the full list, replacing).
    assigned_villages: list[str] | None = Field(default=None, max_length=10)


class BrokerStatusRequest(SQLModel):
    action: str = Field(max_length=16)  # suspend | reinstate | retire | eliminate
    reason: str = Field(max_length=500)


class StatusChangePublic(SQLModel):
    old_status: str | None
    new_status: str
    reason: str
    at: datetime


class GapApplication(SQLModel):
    id: int
    tracking_code: str
    name: str
    status: str
    submitted_at: datetime


class GapVillage(SQLModel):
    """A village below its staffing need, and who has applied from there."""

    village_code: str
    village_name: str
    township_name: str
    population: int | None
    required: int
    active: int
    gap: int
    assigned_from_elsewhere: int  # active brokers of other villages assigned here
    open_applications: list[GapApplication]
