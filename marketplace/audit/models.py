"""The audit log: append-only and hash-chained, so a changed or missing row shows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index
from sqlmodel import Field, SQLModel

from marketplace.db import UTCDateTime


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_region_at", "region_code", "at"),)

    # Assigned from the chain head under its lock, never by autoincrement.
    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    at: datetime = Field(sa_type=UTCDateTime)
    actor_user_id: int | None = Field(default=None, index=True)
    actor_role: str = Field(max_length=32)
    action: str = Field(max_length=64, index=True)
    object_type: str = Field(max_length=32)
    object_id: str | None = Field(default=None, max_length=64)
    region_code: str | None = Field(default=None, max_length=12)
    ip: str | None = Field(default=None, max_length=64)
    outcome: str = Field(max_length=32)
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class AuditHead(SQLModel, table=True):
    """One row: the newest entry's id and hash, locked by every writer."""

    __tablename__ = "audit_head"

    id: int = Field(default=1, primary_key=True)
    last_id: int = 0
    last_hash: str = Field(max_length=64)


class AuditPublic(SQLModel):
    id: int
    at: datetime
    actor_user_id: int | None
    actor_role: str
    action: str
    object_type: str
    object_id: str | None
    region_code: str | None
    ip: str | None
    outcome: str
    detail: dict[str, Any]
    hash: str
