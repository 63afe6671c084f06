"""Delivering outbox events to handlers: at least once, never lost.

Each event is delivered in one transaction: the event row is locked, every due
handler runs inside its own savepoint, and a ``done`` or ``failing`` row per
handler is written beside the handler's own effects. A handler's ``Exception``
rolls back its savepoint only and is retried later with exponential backoff;
anything else escaping (cancellation, the process dying) commits nothing, so the
next drain delivers the event again. Effects in the database therefore happen
exactly once; a handler with outside effects (a search index) must be idempotent.
On PostgreSQL several workers share the outbox via ``FOR UPDATE SKIP LOCKED``.
See docs/outbox.md.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from marketplace.clock import utcnow
from marketplace.db import begin_write
from marketplace.events import OutboxDelivery, OutboxEvent

log = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, OutboxEvent], Awaitable[None]]

BASE_BACKOFF = timedelta(seconds=2)
MAX_BACKOFF = timedelta(hours=1)


def backoff(attempts: int) -> timedelta:
    return min(BASE_BACKOFF * (2 ** max(0, attempts - 1)), MAX_BACKOFF)


@dataclass
class Registry:
    """Handlers by event name; ``web`` wires the real ones, tests their own."""

    handlers: dict[str, dict[str, Handler]] = field(default_factory=dict)

    def subscribe(self, event_name: str, handler_name: str, handler: Handler) -> None:
        self.handlers.setdefault(event_name, {})[handler_name] = handler

    def for_event(self, event_name: str) -> dict[str, Handler]:
        return self.handlers.get(event_name, {})


@dataclass
class DrainReport:
    delivered: int = 0
    failed: int = 0
    events_completed: int = 0


async def drain(
    factory: async_sessionmaker[AsyncSession], registry: Registry, *, batch: int = 200
) -> DrainReport:
    """Deliver everything that is due; returns when nothing due is left."""
    report = DrainReport()
    last_id = 0
    while True:
        async with factory() as session:
            ids = list(
                (
                    await session.execute(
                        select(col(OutboxEvent.id))
                        .where(
                            col(OutboxEvent.processed_at).is_(None), col(OutboxEvent.id) > last_id
                        )
                        .order_by(col(OutboxEvent.id))
                        .limit(batch)
                    )
                ).scalars()
            )
        if not ids:
            return report
        for event_id in ids:
            assert event_id is not None
            await _deliver_event(factory, registry, event_id, report)
            last_id = event_id


async def _deliver_event(
    factory: async_sessionmaker[AsyncSession],
    registry: Registry,
    event_id: int,
    report: DrainReport,
) -> None:
    async with factory() as session:
        await begin_write(session)
        stmt = select(OutboxEvent).where(col(OutboxEvent.id) == event_id)
        if session.bind is not None and session.bind.dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        event = (await session.execute(stmt)).scalar_one_or_none()
        if event is None or event.processed_at is not None:
            await session.rollback()
            return  # another worker holds it or finished it
        deliveries = {
            d.handler: d
            for d in (
                await session.execute(
                    select(OutboxDelivery).where(col(OutboxDelivery.event_id) == event_id)
                )
            ).scalars()
        }
        pending = False
        for name, handler in registry.for_event(event.name).items():
            done = deliveries.get(name)
            if done is not None and done.status == "done":
                continue
            if done is not None and done.next_attempt_at and done.next_attempt_at > utcnow():
                pending = True
                continue
            ok = await _run_handler(session, event, name, handler, done)
            report.delivered += ok
            report.failed += not ok
            pending = pending or not ok
        if not pending:
            event.processed_at = utcnow()
            session.add(event)
            report.events_completed += 1
        await session.commit()


async def _run_handler(
    session: AsyncSession,
    event: OutboxEvent,
    name: str,
    handler: Handler,
    previous: OutboxDelivery | None,
) -> bool:
    attempts = (previous.attempts if previous else 0) + 1
    savepoint = await session.begin_nested()
    try:
        await handler(session, event)
        await session.flush()
    except Exception as exc:  # a handler's failure must not stop the others
        await savepoint.rollback()
        log.warning("outbox handler %s failed on event %s: %s", name, event.id, exc)
        await _mark(session, event, name, "failing", attempts, error=repr(exc)[:500])
        return False
    await savepoint.commit()
    await _mark(session, event, name, "done", attempts)
    return True


async def _mark(
    session: AsyncSession,
    event: OutboxEvent,
    handler: str,
    status: str,
    attempts: int,
    *,
    error: str | None = None,
) -> None:
    assert event.id is not None
    delivery = await session.get(OutboxDelivery, (event.id, handler))
    if delivery is None:
        delivery = OutboxDelivery(event_id=event.id, handler=handler, status=status)
    delivery.status = status
    delivery.attempts = attempts
    delivery.last_error = error
    delivery.updated_at = utcnow()
    delivery.next_attempt_at = utcnow() + backoff(attempts) if status == "failing" else None
    session.add(delivery)
    await session.flush()
