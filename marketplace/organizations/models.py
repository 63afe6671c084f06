"""Organisations (employers and HR agencies), their members, and the authorisations an
employer gives an agency to recruit for it. See docs/jobs.md."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from marketplace.clock import utcnow
from marketplace.db import UTCDateTime


class OrganizationKind(StrEnum):
    employer = "employer"  # 用人单位
    agency = "agency"  # 人力资源服务机构 / 劳务输出中介


class OrganizationStatus(StrEnum):
    pending = "pending"  # registered, waiting for the district admin; may draft only
    verified = "verified"
    rejected = "rejected"


KIND_LABELS = {OrganizationKind.employer: "用人单位", OrganizationKind.agency: "人力资源服务机构"}
STATUS_LABELS = {
    OrganizationStatus.pending: "待核验",
    OrganizationStatus.verified: "已核验",
    OrganizationStatus.rejected: "未通过核验",
}


class Organization(SQLModel, table=True):
    __tablename__ = "organization"
    __table_args__ = (Index("ix_organization_region_status", "region_code", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    name: str = Field(max_length=100, index=True)
    credit_code: str = Field(max_length=18, unique=True)  # 统一社会信用代码 (GB 32100)
    contact_name: str = Field(max_length=32)
    contact_phone: str = Field(max_length=32)
    address: str = Field(max_length=200)
    licence_no: str | None = Field(default=None, max_length=64)  # 人力资源服务许可证编号
    # The district (or a township/village inside it) the organisation is registered in;
    # the district admin of that district verifies it.
    region_code: str = Field(foreign_key="region.code", max_length=12)
    status: str = Field(default=OrganizationStatus.pending, max_length=16)
    status_reason: str | None = Field(default=None, max_length=500)
    verified_by: int | None = Field(default=None, foreign_key="user_account.id")
    verified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_by: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class OrganizationMember(SQLModel, table=True):
    """An employer or agency account acting for an organisation; one organisation per
    account (``user_id`` unique), many accounts per organisation."""

    __tablename__ = "organization_member"

    id: int | None = Field(default=None, primary_key=True)
    organization_id: int = Field(foreign_key="organization.id", index=True)
    user_id: int = Field(foreign_key="user_account.id", unique=True)
    added_by: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AgencyAuthorization(SQLModel, table=True):
    """An employer's written authorisation (授权委托书) for an agency to recruit for it,
    valid from ``valid_from`` to ``valid_until`` inclusive unless revoked."""

    __tablename__ = "agency_authorization"
    __table_args__ = (
        UniqueConstraint("employer_id", "agency_id", "document_ref"),
        Index("ix_agency_authorization_pair", "agency_id", "employer_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    employer_id: int = Field(foreign_key="organization.id")
    agency_id: int = Field(foreign_key="organization.id")
    document_ref: str = Field(max_length=100)
    valid_from: date
    valid_until: date
    recorded_by: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


# --- request and response schemas ------------------------------------------------------


class OrganizationCreate(SQLModel):
    kind: OrganizationKind
    name: str = Field(min_length=2, max_length=100)
    credit_code: str = Field(max_length=32)
    contact_name: str = Field(min_length=1, max_length=32)
    contact_phone: str = Field(max_length=32)
    address: str = Field(min_length=2, max_length=200)
    licence_no: str | None = Field(default=None, max_length=64)
    # Defaults to the caller's own region (an employer account's district).
    region_code: str | None = Field(default=None, max_length=12)


class OrganizationPublic(SQLModel):
    id: int
    kind: str
    name: str
    credit_code: str
    contact_name: str
    contact_phone: str
    address: str
    licence_no: str | None
    region_code: str
    status: str
    status_reason: str | None
    verified_at: datetime | None
    created_at: datetime


class VerifyRequest(SQLModel):
    approve: bool
    reason: str | None = Field(default=None, max_length=500)


class MemberAdd(SQLModel):
    user_id: int = Field(ge=1, le=2_147_483_647)


class MemberPublic(SQLModel):
    organization_id: int
    user_id: int
    username: str
    display_name: str
    role: str
    created_at: datetime


class AuthorizationCreate(SQLModel):
    agency_id: int = Field(ge=1, le=2_147_483_647)
    document_ref: str = Field(min_length=2, max_length=100)
    valid_from: date
    valid_until: date


class AuthorizationPublic(SQLModel):
    id: int
    employer_id: int
    agency_id: int
    document_ref: str
    valid_from: date
    valid_until: date
    revoked_at: datetime | None
    created_at: datetime
