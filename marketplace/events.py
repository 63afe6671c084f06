"""The outbox: domain events written in the caller's transaction.

A change that another package must react to is stored as an ``outbox_event`` row
in the same transaction as the change itself, so the two commit or vanish
together. ``marketplace.dispatcher`` delivers each event to every subscribed
handler at least once and records each delivery in ``outbox_delivery``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel

from marketplace.clock import utcnow
from marketplace.db import UTCDateTime


class OutboxEvent(SQLModel, table=True):
    __tablename__ = "outbox_event"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, index=True)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Set once every handler subscribed at the time has taken the event.
    processed_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)


class OutboxDelivery(SQLModel, table=True):
    """One row per (event, handler): done, or failing with a time for the next try."""

    __tablename__ = "outbox_delivery"

    event_id: int = Field(foreign_key="outbox_event.id", primary_key=True)
    handler: str = Field(primary_key=True, max_length=64)
    status: str = Field(max_length=16)  # done | failing
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, max_length=500)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


async def emit(session: AsyncSession, name: str, payload: dict[str, Any]) -> OutboxEvent:
    """Write an event in the caller's transaction; it is delivered after commit."""
    event = OutboxEvent(name=name, payload=payload)
    session.add(event)
    await session.flush()
    return event
