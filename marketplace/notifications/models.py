"""The in-app inbox: one row per message to one user."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from marketplace.clock import utcnow
from marketplace.db import UTCDateTime


class Notification(SQLModel, table=True):
    __tablename__ = "notification"
    __table_args__ = (
        # An event redelivered by the outbox must not notify twice.
        UniqueConstraint("user_id", "source_event_id", name="uq_notification_user_event"),
        Index("ix_notification_user_unread", "user_id", "read_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user_account.id")
    title: str = Field(max_length=120)
    body: str = Field(default="", max_length=2000)
    link: str | None = Field(default=None, max_length=300)
    source_event_id: int | None = Field(default=None, foreign_key="outbox_event.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    read_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class NotificationPublic(SQLModel):
    id: int
    title: str
    body: str
    link: str | None
    created_at: datetime
    read_at: datetime | None
