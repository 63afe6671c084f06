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
