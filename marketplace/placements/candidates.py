"""The candidate prefilter: indexed rows per (worker, occupation), and the bounded
set of worker ids a job's candidate list is ranked from.

A worker's occupations live in a JSON list, which neither SQLite nor PostgreSQL
indexes the same way; ``worker_occupation`` repeats them one per row beside the
columns candidate search filters on (village, consent, last verification). The
``worker.changed`` handler keeps it in step; ``rebuild`` fills it from scratch (demo
data and benchmarks insert workers without events).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Integer, Select, bindparam, delete, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace.events import OutboxEvent
from marketplace.placements.models import WorkerOccupation
from marketplace.regions.models import CITY_CODE
from marketplace.workers.models import EmploymentStatus, Worker

# Ranked per job: enough for a broker's or employer's first screens (the best 200 by the
# prefilter's order), small enough that loading and ranking stay within milliseconds.
POOL = 200
NEVER = datetime(1970, 1, 1, tzinfo=UTC)


def _rows(worker: Worker) -> list[dict[str, object]]:
    if worker.deleted_at is not None or worker.id is None:
        return []
    if worker.employment_status == EmploymentStatus.not_in_labour_force:
        return []
    return [
        {
            "worker_id": worker.id,
            "occupation_key": key,
            "village_code": worker.hukou_village_code,
            "consent": worker.consent_to_recommend,
            # Never null: the pick orders by it, and NULLs sort first descending on
            # PostgreSQL but last on SQLite.
            "verified_at": worker.last_verified_at or NEVER,
        }
        for key in dict.fromkeys(worker.occupation_codes)
    ]


async def refresh(session: AsyncSession, worker_ids: Iterable[int]) -> None:
    ids = list(worker_ids)
    if not ids:
        return
    await session.execute(delete(WorkerOccupation).where(col(WorkerOccupation.worker_id).in_(ids)))
    workers = (await session.execute(select(Worker).where(col(Worker.id).in_(ids)))).scalars()
    rows = [row for worker in workers for row in _rows(worker)]
    if rows:
        await session.execute(insert(WorkerOccupation), rows)


async def on_worker_changed(session: AsyncSession, event: OutboxEvent) -> None:
    """Idempotent: the rows are rebuilt from the worker as it is now."""
    worker_id = event.payload.get("worker_id")
    if isinstance(worker_id, int):
        await refresh(session, [worker_id])


HANDLERS = {"worker.changed": on_worker_changed}


async def rebuild(session: AsyncSession, *, batch: int = 20_000) -> int:
    """Every live worker's rows, from scratch; returns the number of rows. Reads plain
    columns (no ORM objects); 1.8 million rows for a million workers (bench/RESULTS.md)."""
    await session.execute(delete(WorkerOccupation))
    columns = (
        col(Worker.id),
        col(Worker.occupation_codes),
        col(Worker.hukou_village_code),
        col(Worker.consent_to_recommend),
        col(Worker.last_verified_at),
    )
    last, total = 0, 0
    while True:
        chunk = (
            await session.execute(
                select(*columns)
                .where(
                    col(Worker.id) > last,
                    col(Worker.deleted_at).is_(None),
                    col(Worker.employment_status) != EmploymentStatus.not_in_labour_force,
                )
                .order_by(col(Worker.id))
                .limit(batch)
            )
        ).all()
        if not chunk:
            # The planner's statistics for the new rows: without them SQLite picked
            # the wrong index for a broker's villages (143 ms CPU a request at
            # 3,000,000 workers; bench/RESULTS.md). ANALYZE runs inside a transaction
            # on both databases.
            await session.execute(text("ANALYZE worker_occupation"))
            return total
        rows = [
            {
                "worker_id": worker_id,
                "occupation_key": key,
                "village_code": village,
                "consent": bool(consent),
                "verified_at": verified or NEVER,
            }
            for worker_id, keys, village, consent, verified in chunk
            for key in dict.fromkeys(keys or [])
        ]
        if rows:
            await session.execute(insert(WorkerOccupation), rows)
        total += len(rows)
        last = int(chunk[-1][0] or last)


def bounds(prefix: str) -> tuple[str, str]:
    """The range of codes starting with ``prefix``: 500101 <= code < 500102."""
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


def under(column: Any, prefix: str) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """Codes starting with ``prefix`` as a range both databases answer from an index
    (a LIKE with a bound pattern is never one on SQLite): 500101 <= code < 500102."""
    low, high = bounds(prefix)
    return column >= low, column < high


@dataclass(frozen=True)
class PoolQuery:
    """Which workers may be candidates: occupations (the job's own first, then its
    family), and either a set of villages (a broker's) or consent (an employer)."""

    exact: Sequence[str]
    related: Sequence[str] = ()
    villages: frozenset[str] | None = None  # a broker: only these villages
    region_prefix: str | None = None  # an officer: only inside this region
    consent_only: bool = False
    near_prefix: str | None = None  # the job's district: its workers are picked first
    limit: int = POOL


def _prefix(code: str | None) -> str | None:
    """A region prefix worth a condition (every code is the city's)."""
    return code if code and len(code) > len(CITY_CODE) else None


@lru_cache(maxsize=64)
def _statement(
    *,
    consent: bool,
    villages: bool,
    region: bool,
    near: bool,
    exclude: bool,
    fresh_first: bool,
    distinct: bool = False,
) -> Select[Any]:
    """One pick's statement, by its shape; the values are bound parameters, so each
    shape is built (and compiled) once per process."""
    wo = WorkerOccupation
    stmt = select(col(wo.worker_id)).where(
        col(wo.occupation_key).in_(bindparam("keys", expanding=True))
    )
    if consent:
        stmt = stmt.where(col(wo.consent).is_(True))
    if villages:
        stmt = stmt.where(col(wo.village_code).in_(bindparam("villages", expanding=True)))
    for name, wanted in (("region", region), ("near", near)):
        if wanted:
            stmt = stmt.where(
                col(wo.village_code) >= bindparam(f"{name}_low"),
                col(wo.village_code) < bindparam(f"{name}_high"),
            )
    if exclude:
        stmt = stmt.where(col(wo.worker_id).not_in(bindparam("found", expanding=True)))
    if fresh_first:
        # The freshest records of the job's own occupation (an index range scan);
        # related occupations are a fallback and take any.
        stmt = stmt.order_by(col(wo.verified_at).desc())
    if distinct:
        stmt = stmt.distinct()
    return stmt.limit(bindparam("want", type_=Integer))


@dataclass(frozen=True)
class Pick:
    """A statement of worker ids and the values of its parameters."""

    statement: Select[Any]
    params: dict[str, Any]


def _pick(
    query: PoolQuery,
    keys: Sequence[str],
    *,
    near: str | None,
    found: dict[int, None],
    want: int,
    fresh_first: bool,
    distinct: bool = False,
) -> Pick:
    region = _prefix(query.region_prefix)
    params: dict[str, Any] = {"keys": list(keys), "want": want}
    if query.villages is not None:
        params["villages"] = sorted(query.villages)
    for name, code in (("region", region), ("near", near)):
        if code:
            params[f"{name}_low"], params[f"{name}_high"] = bounds(code)
    if found:
        params["found"] = list(found)
    stmt = _statement(
        consent=query.consent_only,
        villages=query.villages is not None,
        region=region is not None,
        near=near is not None,
        exclude=bool(found),
        fresh_first=fresh_first,
        distinct=distinct,
    )
    return Pick(stmt, params)


async def _ids(session: AsyncSession, pick: Pick) -> list[int]:
    rows = await session.execute(pick.statement, pick.params)
    return [int(worker_id) for worker_id in rows.scalars()]


def whole(query: PoolQuery) -> Pick | None:
    """A broker's villages seldom hold more workers of the pool's occupations than the
    pool takes: this pick reads them all, distinct, up to one more than the limit. When
    it finds no more than the limit, that is the pool (the order of the steps only
    decides who is left out); otherwise the steps decide (``picked``)."""
    if query.villages is None:
        return None
    every = list(dict.fromkeys([*query.exact, *query.related]))
    if not every:
        return None
    return _pick(
        query, every, near=None, found={}, want=query.limit + 1, fresh_first=False, distinct=True
    )


async def pool(session: AsyncSession, query: PoolQuery) -> list[int]:
    """Worker ids to rank, bounded by ``query.limit``: those of the job's occupation near
    the job, then anywhere (most recently verified first), then of related occupations.
    Each step is one index range scan; a broker's villages are read whole first."""
    everyone = whole(query)
    if everyone is not None:
        ids = await _ids(session, everyone)
        if len(ids) <= query.limit:
            return ids
    return await picked(session, query)


async def picked(session: AsyncSession, query: PoolQuery) -> list[int]:
    """The pool by its steps, in order, each taking what the ones before left."""
    found: dict[int, None] = {}
    near = _prefix(query.near_prefix)
    steps: list[tuple[Sequence[str], str | None]] = []
    if query.near_prefix:
        steps.append((query.exact, near))
    steps.append((query.exact, None))
    if query.related:
        if query.near_prefix:
            steps.append((query.related, near))
        steps.append((query.related, None))
    for keys, prefix in steps:
        want = query.limit - len(found)
        if want <= 0 or not keys:
            continue
        pick = _pick(
            query, keys, near=prefix, found=found, want=want, fresh_first=keys is query.exact
        )
        for worker_id in await _ids(session, pick):
            found.setdefault(worker_id, None)
    return list(found)
