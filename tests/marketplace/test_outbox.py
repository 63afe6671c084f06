"""The outbox: events commit with the change, reach every handler at least once,
failures are retried with backoff, and a dispatcher that dies loses nothing."""

from __future__ import annotations

import asyncio
import signal
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from marketplace import audit
from marketplace.access import SYSTEM
from marketplace.audit.models import AuditEntry
from marketplace.clock import utcnow
from marketplace.db import unit_of_work
from marketplace.dispatcher import MAX_BACKOFF, Handler, Registry, backoff, drain
from marketplace.events import OutboxDelivery, OutboxEvent, emit
from marketplace.notifications.models import Notification

Sessions = async_sessionmaker[AsyncSession]
ROOT = Path(__file__).resolve().parents[2]


class Crash(BaseException):
    """Stands in for the process dying: escapes ``except Exception``."""


async def _emit(sessions: Sessions, name: str = "thing.happened", **payload: object) -> int:
    async with unit_of_work(sessions) as session:
        event = await emit(session, name, dict(payload))
    assert event.id is not None
    return event.id


async def _effect(session: AsyncSession, event: OutboxEvent) -> None:
    """A database-side effect that is NOT idempotent by itself: one audit row per call."""
    await audit.record(
        session=session, actor=SYSTEM, action="test.effect", object_type="event", object_id=event.id
    )


async def _effects(sessions: Sessions, event_id: int) -> int:
    async with sessions() as session:
        return (
            await session.execute(
                select(func.count())
                .select_from(AuditEntry)
                .where(
                    col(AuditEntry.action) == "test.effect",
                    col(AuditEntry.object_id) == str(event_id),
                )
            )
        ).scalar_one()


async def _deliveries(sessions: Sessions, event_id: int) -> dict[str, OutboxDelivery]:
    async with sessions() as session:
        rows = await session.execute(
            select(OutboxDelivery).where(col(OutboxDelivery.event_id) == event_id)
        )
        return {d.handler: d for d in rows.scalars()}


async def _event(sessions: Sessions, event_id: int) -> OutboxEvent:
    async with sessions() as session:
        event = await session.get(OutboxEvent, event_id)
        assert event is not None
        return event


# --- emit -----------------------------------------------------------------------------


async def test_emit_commits_with_the_callers_transaction(sessions: Sessions) -> None:
    event_id = await _emit(sessions, "user.created", user_id=7)
    event = await _event(sessions, event_id)
    assert (event.name, event.payload, event.processed_at) == ("user.created", {"user_id": 7}, None)


async def test_emit_vanishes_when_the_caller_rolls_back(sessions: Sessions) -> None:
    async def failing_change() -> None:
        async with unit_of_work(sessions) as session:
            await emit(session, "thing.happened", {"n": 1})
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        await failing_change()
    async with sessions() as session:
        count = (await session.execute(select(func.count()).select_from(OutboxEvent))).scalar_one()
    assert count == 0
    assert (await drain(sessions, Registry())).events_completed == 0


# --- delivery -------------------------------------------------------------------------


async def test_every_subscribed_handler_gets_every_event_once(sessions: Sessions) -> None:
    seen: list[tuple[str, int]] = []

    def recorder(label: str) -> Handler:
        async def handle(session: AsyncSession, event: OutboxEvent) -> None:
            assert event.id is not None
            seen.append((label, event.id))

        return handle

    registry = Registry()
    registry.subscribe("thing.happened", "a", recorder("a"))
    registry.subscribe("thing.happened", "b", recorder("b"))
    registry.subscribe("other.thing", "c", recorder("c"))
    first = await _emit(sessions)
    second = await _emit(sessions, "other.thing")
    unheard = await _emit(sessions, "nobody.listens")

    report = await drain(sessions, registry)

    assert sorted(seen) == [("a", first), ("b", first), ("c", second)]
    assert (report.delivered, report.failed, report.events_completed) == (3, 0, 3)
    done = await _deliveries(sessions, first)
    assert {h: (d.status, d.attempts) for h, d in done.items()} == {
        "a": ("done", 1),
        "b": ("done", 1),
    }
    for event_id in (first, second, unheard):
        assert (await _event(sessions, event_id)).processed_at is not None
    # Nothing is delivered twice by a later drain.
    assert (await drain(sessions, registry)).delivered == 0
    assert len(seen) == 3


def test_backoff_doubles_up_to_an_hour() -> None:
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [2, 4, 8, 16]
    assert backoff(40) == MAX_BACKOFF


async def test_failing_handler_is_retried_with_backoff_without_touching_others(
    sessions: Sessions,
) -> None:
    calls = {"good": 0, "flaky": 0}

    async def good(session: AsyncSession, event: OutboxEvent) -> None:
        calls["good"] += 1
        await _effect(session, event)

    async def flaky(session: AsyncSession, event: OutboxEvent) -> None:
        calls["flaky"] += 1
        await _effect(session, event)  # rolled back with the failure
        if calls["flaky"] == 1:
            raise RuntimeError("search engine unreachable")

    registry = Registry()
    registry.subscribe("thing.happened", "good", good)
    registry.subscribe("thing.happened", "flaky", flaky)
    event_id = await _emit(sessions)

    before = utcnow()
    report = await drain(sessions, registry)
    assert (report.delivered, report.failed, report.events_completed) == (1, 1, 0)
    rows = await _deliveries(sessions, event_id)
    assert rows["good"].status == "done"
    failing = rows["flaky"]
    assert (failing.status, failing.attempts) == ("failing", 1)
    assert "search engine unreachable" in (failing.last_error or "")
    assert failing.next_attempt_at is not None
    assert before + backoff(1) <= failing.next_attempt_at <= utcnow() + backoff(1)
    assert await _effects(sessions, event_id) == 1  # only the good handler's
    assert (await _event(sessions, event_id)).processed_at is None

    # Not due yet: nobody is called again.
    assert (await drain(sessions, registry)).delivered == 0
    assert calls == {"good": 1, "flaky": 1}

    # Due: only the failed handler runs, and the event is complete.
    async with unit_of_work(sessions) as session:
        await session.execute(
            update(OutboxDelivery)
            .where(col(OutboxDelivery.event_id) == event_id)
            .values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )
    report = await drain(sessions, registry)
    assert (report.delivered, report.failed, report.events_completed) == (1, 0, 1)
    assert calls == {"good": 1, "flaky": 2}
    rows = await _deliveries(sessions, event_id)
    assert (rows["flaky"].status, rows["flaky"].attempts) == ("done", 2)
    assert rows["flaky"].next_attempt_at is None
    assert await _effects(sessions, event_id) == 2
    assert (await _event(sessions, event_id)).processed_at is not None


async def test_database_error_in_one_handler_spares_the_others(sessions: Sessions) -> None:
    """A constraint violation aborts only that handler's savepoint."""

    async def violates(session: AsyncSession, event: OutboxEvent) -> None:
        await _effect(session, event)
        session.add(Notification(user_id=987_654, title="nobody", source_event_id=event.id))
        await session.flush()  # foreign key violation

    registry = Registry()
    registry.subscribe("thing.happened", "bad", violates)
    registry.subscribe("thing.happened", "good", _effect)
    event_id = await _emit(sessions)
    report = await drain(sessions, registry)
    assert (report.delivered, report.failed) == (1, 1)
    rows = await _deliveries(sessions, event_id)
    assert (rows["bad"].status, rows["good"].status) == ("failing", "done")
    assert "IntegrityError" in (rows["bad"].last_error or "")
    assert await _effects(sessions, event_id) == 1


async def test_repeated_failures_back_off_further(sessions: Sessions) -> None:
    async def broken(session: AsyncSession, event: OutboxEvent) -> None:
        raise ValueError("still broken")

    registry = Registry()
    registry.subscribe("thing.happened", "broken", broken)
    event_id = await _emit(sessions)
    for attempt in (1, 2, 3):
        async with unit_of_work(sessions) as session:
            await session.execute(
                update(OutboxDelivery).values(next_attempt_at=utcnow() - timedelta(seconds=1))
            )
        assert (await drain(sessions, registry)).failed == 1
        row = (await _deliveries(sessions, event_id))["broken"]
        assert row.attempts == attempt
        assert row.next_attempt_at is not None
        wait = row.next_attempt_at - row.updated_at
        assert abs(wait - backoff(attempt)) < timedelta(seconds=1)
    assert (await _event(sessions, event_id)).processed_at is None


# --- dying mid-run --------------------------------------------------------------------


async def test_crash_mid_delivery_commits_nothing_and_next_drain_delivers_once(
    sessions: Sessions,
) -> None:
    """A handler that has written its effect when the process 'dies' (a BaseException
    escapes): neither its effect nor any delivery row of the event may be committed."""
    state = {"crash": True}
    first_handler_calls = 0

    async def first(session: AsyncSession, event: OutboxEvent) -> None:
        nonlocal first_handler_calls
        first_handler_calls += 1
        await _effect(session, event)

    async def second(session: AsyncSession, event: OutboxEvent) -> None:
        await _effect(session, event)
        if state["crash"]:
            raise Crash

    registry = Registry()
    registry.subscribe("thing.happened", "first", first)
    registry.subscribe("thing.happened", "second", second)
    event_id = await _emit(sessions)

    with pytest.raises(Crash):
        await drain(sessions, registry)
    assert await _deliveries(sessions, event_id) == {}
    assert await _effects(sessions, event_id) == 0
    assert (await _event(sessions, event_id)).processed_at is None

    state["crash"] = False
    report = await drain(sessions, registry)
    assert (report.delivered, report.events_completed) == (2, 1)
    assert first_handler_calls == 2  # at least once: redelivered after the crash
    assert await _effects(sessions, event_id) == 2  # but each effect exactly once
    assert {d.status for d in (await _deliveries(sessions, event_id)).values()} == {"done"}


async def test_cancelled_drain_releases_the_database_and_loses_nothing(
    sessions: Sessions,
) -> None:
    started = asyncio.Event()

    async def slow(session: AsyncSession, event: OutboxEvent) -> None:
        await _effect(session, event)
        started.set()
        await asyncio.sleep(30)

    registry = Registry()
    registry.subscribe("thing.happened", "slow", slow)
    event_id = await _emit(sessions)
    task = asyncio.create_task(drain(sessions, registry))
    await asyncio.wait_for(started.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    async def quick(session: AsyncSession, event: OutboxEvent) -> None:
        await _effect(session, event)

    fixed = Registry()
    fixed.subscribe("thing.happened", "slow", quick)
    # A leftover write lock would make this wait for the busy timeout and fail.
    report = await asyncio.wait_for(drain(sessions, fixed), 10)
    assert report.events_completed == 1
    assert await _effects(sessions, event_id) == 1


_KILLED_WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from marketplace import audit
    from marketplace.access import SYSTEM
    from marketplace.db import create_engine, session_factory
    from marketplace.dispatcher import Registry, drain

    async def slow(session, event):
        await audit.record(session=session, actor=SYSTEM, action="test.effect",
                           object_type="event", object_id=event.id)
        await session.flush()
        print("ready", flush=True)
        await asyncio.sleep(60)

    async def main():
        registry = Registry()
        registry.subscribe("thing.happened", "slow", slow)
        engine = create_engine(sys.argv[1])
        await drain(session_factory(engine), registry)

    asyncio.run(main())
    """
)


async def test_worker_killed_mid_delivery_loses_nothing(sessions: Sessions, db_url: str) -> None:
    """SIGKILL a real dispatcher process while its handler runs; the next drain
    delivers the event, and the effect lands exactly once."""
    event_id = await _emit(sessions)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _KILLED_WORKER,
        db_url,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert line.strip() == b"ready"
    finally:
        proc.send_signal(signal.SIGKILL)
        _, stderr = await proc.communicate()
    assert proc.returncode == -signal.SIGKILL, stderr.decode()

    registry = Registry()
    registry.subscribe("thing.happened", "slow", _effect)
    report = await asyncio.wait_for(drain(sessions, registry), 20)
    assert (report.delivered, report.events_completed) == (1, 1)
    assert await _effects(sessions, event_id) == 1
    async with sessions() as session:
        assert (await audit.verify(session=session)).ok


# --- several dispatchers ---------------------------------------------------------------


async def test_concurrent_drains_do_not_double_deliver(sessions: Sessions) -> None:
    """Two dispatchers at once (PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite: the
    write lock) deliver each event to each handler exactly once."""
    seen: list[int] = []

    async def handler(session: AsyncSession, event: OutboxEvent) -> None:
        assert event.id is not None
        seen.append(event.id)
        await _effect(session, event)
        await asyncio.sleep(0.02)

    registry = Registry()
    registry.subscribe("thing.happened", "h", handler)
    ids = [await _emit(sessions, n=n) for n in range(12)]

    reports = await asyncio.gather(
        drain(sessions, registry, batch=5), drain(sessions, registry, batch=5)
    )

    assert sorted(seen) == ids
    assert sum(r.delivered for r in reports) == len(ids)
    for event_id in ids:
        assert await _effects(sessions, event_id) == 1
    async with sessions() as session:
        open_events = (
            await session.execute(
                select(func.count())
                .select_from(OutboxEvent)
                .where(col(OutboxEvent.processed_at).is_(None))
            )
        ).scalar_one()
    assert open_events == 0


async def test_postgres_skips_an_event_another_worker_holds(
    sessions: Sessions, db_url: str
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("row locks are PostgreSQL's; SQLite serialises writers")
    event_id = await _emit(sessions)
    called: list[int] = []

    async def handler(session: AsyncSession, event: OutboxEvent) -> None:
        assert event.id is not None
        called.append(event.id)

    registry = Registry()
    registry.subscribe("thing.happened", "h", handler)
    async with sessions() as holder:
        await holder.execute(
            text("SELECT id FROM outbox_event WHERE id = :id FOR UPDATE"), {"id": event_id}
        )
        report = await asyncio.wait_for(drain(sessions, registry), 5)  # does not wait
        assert (report.delivered, called) == (0, [])
        await holder.rollback()
    assert (await drain(sessions, registry)).delivered == 1
    assert called == [event_id]
