"""User accounts, their login sessions, and the request/response schemas."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from marketplace.clock import utcnow
from marketplace.db import UTCDateTime


class User(SQLModel, table=True):
    __tablename__ = "user_account"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True)
    display_name: str = Field(max_length=64)
    role: str = Field(max_length=32, index=True)
    region_code: str = Field(foreign_key="region.code", max_length=12, index=True)
    password_hash: str = Field(max_length=255)
    is_active: bool = True
    failed_logins: int = 0
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # TOTP secret, encrypted with the data key; confirmed once a code has been used.
    totp_secret_enc: str | None = Field(default=None, max_length=255)
    totp_confirmed: bool = False
    totp_last_step: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AuthSession(SQLModel, table=True):
    """A login: a browser cookie or an API bearer token; only the token's hash is kept."""

    __tablename__ = "auth_session"
    __table_args__ = (Index("ix_auth_session_user_open", "user_id", "ended_at"),)

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    user_id: int = Field(foreign_key="user_account.id")
    kind: str = Field(max_length=16)  # cookie | bearer
    created_at: datetime = Field(sa_type=UTCDateTime)
    last_seen_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ip: str | None = Field(default=None, max_length=64)


class UserActivityDay(SQLModel, table=True):
    """A day (Chongqing time) on which the user was signed in and active: the login
    activity that scoring counts. One row per user and day, written on login and on
    the first request of each day."""

    __tablename__ = "user_activity_day"

    user_id: int = Field(foreign_key="user_account.id", primary_key=True)
    day: date = Field(primary_key=True)


class UserPublic(SQLModel):
    id: int
    username: str
    display_name: str
    role: str
    region_code: str
    is_active: bool
    totp_enabled: bool
    locked_until: datetime | None
    created_at: datetime


class UserCreate(SQLModel):
    # SQLModel ignores ``regex=``; pydantic v2 needs the pattern passed through.
    username: str = Field(
        min_length=3, max_length=64, schema_extra={"pattern": r"^[A-Za-z0-9_.\-]+$"}
    )
    display_name: str = Field(min_length=1, max_length=64)
    role: str
    region_code: str
    password: str = Field(max_length=256)


class UserUpdate(SQLModel):
    """Every field optional; which ones the caller may set is decided in the service."""

    display_name: str | None = Field(default=None, min_length=1, max_length=64)
    role: str | None = None
    region_code: str | None = None
    is_active: bool | None = None
    password: str | None = Field(default=None, max_length=256)
    reset_totp: bool | None = None


class LoginRequest(SQLModel):
    username: str = Field(max_length=64)
    password: str = Field(max_length=256)
    otp: str | None = Field(default=None, max_length=12)


class LoginResponse(SQLModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105  (the OAuth2 token type, not a secret)
    expires_in: int
    user: UserPublic


class TotpEnrolRequest(SQLModel):
    username: str = Field(max_length=64)
    password: str = Field(max_length=256)


class TotpEnrolResponse(SQLModel):
    otpauth_uri: str
    secret: str
