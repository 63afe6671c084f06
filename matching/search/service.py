"""Worker and job search for callers: scope as engine filters, hits re-checked in the
database (the index may lag the database by an event or two). See docs/search.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace.access import Actor, Role, in_scope
from marketplace.errors import Forbidden, Invalid
from marketplace.jobs.models import Job, JobStatus
from marketplace.organizations.models import Organization
from marketplace.workers import scope
from marketplace.workers.models import Worker
from matching.normalize import normalize
from matching.search.base import JOBS, WORKERS, Clause, SearchBackend, SearchQuery
from matching.search.documents import day_number
from matching.taxonomy import load_taxonomy

MAX_QUERY_CHARS = 50
WORKER_SORTS = {"relevance": None, "updated": "-updated", "available": "available"}
JOB_SORTS = {
    "relevance": None,
    "updated": "-updated",
    "wage": "-wage_max",
    "starts": "starts",
}


def occupation_key(text: str | None) -> str | None:
    """An occupation key, national code or name (any synonym) → its key; 422 if none."""
    if text is None or not text.strip():
        return None
    occ = load_taxonomy().lookup(text.strip())
    if occ is not None:
        return occ.key
    match = normalize(text)
    if match is None:
        raise Invalid("occupation", f"不认识的工种：{text[:20]}")
    return match.key


def _text(q: str | None) -> str | None:
    if q is None:
        return None
    if len(q) > MAX_QUERY_CHARS:
        raise Invalid("q", f"关键词最多 {MAX_QUERY_CHARS} 个字")
    return q


@dataclass(frozen=True)
class WorkerSearch:
    q: str | None = None
    occupation: str | None = None
    village_code: str | None = None  # any region code: the subtree under it
    employment_status: str | None = None
    available_by: date | None = None  # free to start on or before this day
    sort: str = "relevance"
    limit: int = 20
    offset: int = 0


# The hits' rows, read on every search: built once (docs/operations.md, "Statements
# built once").
_WORKERS_BY_ID = select(Worker).where(col(Worker.id).in_(bindparam("ids", expanding=True)))
_JOBS_BY_ID = (
    select(Job, col(Organization.name))
    .join(Organization, col(Organization.id) == col(Job.organization_id))
    .where(col(Job.id).in_(bindparam("ids", expanding=True)))
)


async def search_workers(
    *, session: AsyncSession, backend: SearchBackend, actor: Actor, params: WorkerSearch
) -> tuple[list[Worker], int]:
    """Live workers in the actor's reach matching ``params``, best first."""
    reach = await scope.reach(session, actor)
    clauses: list[Clause] = []
    code = params.village_code
    if actor.role == Role.broker:
        # Only workers of the broker's villages (docs/search.md).
        clauses.append({"region": sorted(reach.villages)})
        if code and not any(v.startswith(code) or code.startswith(v) for v in reach.villages):
            raise Forbidden(f"区划 {code} 不在您服务的村（社区）内", field="village_code")
    elif not actor.is_system:
        if code and not in_scope(actor, code) and not actor.region_code.startswith(code):
            raise Forbidden(f"区划 {code} 不在您的管辖范围内", field="village_code")
        clauses.append({"region": [actor.region_code]})
    if code:
        clauses.append({"region": [code]})
    key = occupation_key(params.occupation)
    if key:
        clauses.append({"occupation": [key]})
    if params.employment_status:
        clauses.append({"status": [params.employment_status]})
    ranges: dict[str, tuple[int | None, int | None]] = {}
    if params.available_by is not None:
        ranges["available"] = (None, day_number(params.available_by))
    query = SearchQuery(
        text=_text(params.q),
        clauses=clauses,
        ranges=ranges,
        sort=WORKER_SORTS[params.sort],
        limit=params.limit,
        offset=params.offset,
    )
    hits = await backend.search(WORKERS, query)
    if not hits.ids:
        return [], hits.total
    rows = {w.id: w for w in (await session.execute(_WORKERS_BY_ID, {"ids": hits.ids})).scalars()}

    def still_ok(worker: Worker | None) -> bool:
        if worker is None or worker.deleted_at is not None:
            return False
        if actor.role == Role.broker:
            return worker.hukou_village_code in reach.villages
        return reach.sees(worker)

    found = [rows[i] for i in hits.ids if still_ok(rows.get(i))]
    return found, max(len(found) + params.offset, hits.total - (len(hits.ids) - len(found)))


@dataclass(frozen=True)
class JobSearch:
    q: str | None = None
    occupation: str | None = None
    region_code: str | None = None
    wage_floor_fen: int | None = None  # the job can pay at least this (its maximum)
    wage_unit: str | None = None
    starts_from: date | None = None
    starts_until: date | None = None
    board: bool | None = None
    lodging: bool | None = None
    sort: str = "relevance"
    limit: int = 20
    offset: int = 0


@dataclass(frozen=True)
class JobHit:
    job: Job
    organization_name: str


async def search_jobs(
    *, session: AsyncSession, backend: SearchBackend, params: JobSearch
) -> tuple[list[JobHit], int]:
    """Published jobs matching ``params``; any signed-in user may search them."""
    if params.starts_from and params.starts_until and params.starts_from > params.starts_until:
        raise Invalid("starts_until", "开工日期区间的结束早于开始")
    clauses: list[Clause] = []
    if params.region_code:
        clauses.append({"region": [params.region_code]})
    key = occupation_key(params.occupation)
    if key:
        clauses.append({"occupation": [key]})
    if params.wage_unit:
        clauses.append({"wage_unit": [params.wage_unit]})
    if params.board is not None:
        clauses.append({"board": ["1" if params.board else "0"]})
    if params.lodging is not None:
        clauses.append({"lodging": ["1" if params.lodging else "0"]})
    ranges: dict[str, tuple[int | None, int | None]] = {}
    if params.wage_floor_fen is not None:
        ranges["wage_max"] = (params.wage_floor_fen, None)
    if params.starts_from or params.starts_until:
        ranges["starts"] = (
            day_number(params.starts_from) if params.starts_from else None,
            day_number(params.starts_until) if params.starts_until else None,
        )
    query = SearchQuery(
        text=_text(params.q),
        clauses=clauses,
        ranges=ranges,
        sort=JOB_SORTS[params.sort],
        limit=params.limit,
        offset=params.offset,
    )
    hits = await backend.search(JOBS, query)
    if not hits.ids:
        return [], hits.total
    rows: dict[Any, tuple[Job, str]] = {
        job.id: (job, name)
        for job, name in (await session.execute(_JOBS_BY_ID, {"ids": hits.ids})).all()
    }
    found = [
        JobHit(job=rows[i][0], organization_name=rows[i][1])
        for i in hits.ids
        if i in rows and rows[i][0].status == JobStatus.published
    ]
    return found, max(len(found) + params.offset, hits.total - (len(hits.ids) - len(found)))
