"""Candidates for a job and jobs for a worker: prefilter in the database, rank a
bounded set with ``matching.rank``, shape for the reader (docs/matching.md).

Who sees what:
- a broker: the workers of their villages (consenting or not: the list says who has
  not consented, and recommending them is refused), named;
- an employer or agency: consenting workers only, for their own jobs, masked until a
  broker recommends one to that job; then the name and phone;
- officers (city, district, township): the workers of their region, named.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from marketplace.access import Actor, Role, require
from marketplace.clock import local, utcnow
from marketplace.crypto import DataCipher
from marketplace.errors import NotFound
from marketplace.jobs.models import Job, JobStatus
from marketplace.placements import cards
from marketplace.placements.candidates import POOL, PoolQuery, picked, under, whole
from marketplace.placements.models import (
    CandidateOut,
    ComponentOut,
    MatchOut,
    Recommendation,
    RecommendationStatus,
)
from marketplace.placements.service import job_belongs_to, organization_of
from marketplace.workers import scope
from marketplace.workers.models import Worker
from matching.rank import (
    Certificate,
    JobProfile,
    Ranked,
    WorkerProfile,
    job_occupation,
    score,
    skill_keys,
)
from matching.taxonomy import load_taxonomy

CHONGQING = "50"


def worker_profile(worker: Worker) -> WorkerProfile:
    return WorkerProfile(
        occupation_codes=tuple(worker.occupation_codes),
        skills=tuple(worker.skills),
        region_code=worker.current_region_code or worker.hukou_village_code,
        mobility=worker.mobility,
        wage_min_fen=worker.wage_min_fen,
        wage_max_fen=worker.wage_max_fen,
        wage_unit=worker.wage_unit,
        available_from=worker.available_from,
        employment_status=worker.employment_status,
        certificates=tuple(_certificate(c) for c in worker.certificates),
        last_verified_at=worker.last_verified_at,
    )


def _certificate(raw: dict[str, Any]) -> Certificate:
    expires = raw.get("expires_on")
    if isinstance(expires, str):
        expires = date.fromisoformat(expires[:10])
    return Certificate(type=str(raw.get("type", "")), expires_on=expires)


def job_profile(job: Job) -> JobProfile:
    return JobProfile(
        occupation_code=job.occupation_code,
        title=job.title,
        region_code=job.work_region_code,
        wage_min_fen=job.wage_min_fen,
        wage_max_fen=job.wage_max_fen,
        wage_unit=job.wage_unit,
        starts_on=job.starts_on,
        certificates_required=tuple(job.certificates_required),
    )


def _components(ranked: Ranked) -> list[ComponentOut]:
    return [
        ComponentOut(name=c.name, score=c.score, weight=c.weight, reason=c.reason)
        for c in ranked.components
    ]


@lru_cache(maxsize=4096)
def _occupation_keys(code: str | None, title: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The job's occupation, and the other occupations of its family (of the packaged
    taxonomy: the same for the same code and title)."""
    tax = load_taxonomy()
    occ = tax.lookup(code) if code else None
    if occ is None:
        occ = job_occupation(JobProfile(occupation_code=code, title=title), tax)
    if occ is None:
        return (), ()
    return (occ.key,), tuple(o.key for o in tax.family(occ.family) if o.key != occ.key)


def _names(keys: Sequence[str]) -> list[str]:
    tax = load_taxonomy()
    return [o.name for o in (tax.get(k) for k in keys) if o is not None]


async def _recommendations(
    session: AsyncSession, *, job_ids: list[int] | None = None, worker_ids: list[int] | None = None
) -> dict[tuple[int, int], Recommendation]:
    """The latest recommendation per (job, worker) among the given ones."""
    stmt = select(Recommendation).order_by(col(Recommendation.id))
    if job_ids is not None:
        stmt = stmt.where(col(Recommendation.job_id).in_(job_ids))
    if worker_ids is not None:
        stmt = stmt.where(col(Recommendation.worker_id).in_(worker_ids))
    found: dict[tuple[int, int], Recommendation] = {}
    for rec in (await session.execute(stmt)).scalars():
        if rec.status != RecommendationStatus.lapsed:
            found[(rec.job_id, rec.worker_id)] = rec
    return found


async def candidates(
    *,
    session: AsyncSession,
    actor: Actor,
    cipher: DataCipher,
    job_id: int,
    limit: int = 20,
    offset: int = 0,
    now: datetime | None = None,
) -> tuple[list[CandidateOut], int]:
    """The best candidates for a job, best first, and how many were ranked."""
    now = now or utcnow()
    today = local(now).date()
    require(actor, "matching.candidates")
    job = await session.get(Job, job_id)
    missing = NotFound(f"岗位 {job_id} 不存在", field="id")
    if job is None or job.id is None:
        raise missing
    employer = actor.role in (Role.employer, Role.agency)
    exact, related = _occupation_keys(job.occupation_code, job.title)
    near = job.work_region_code[:6] if job.work_region_code.startswith(CHONGQING) else None
    query = PoolQuery(exact=exact, related=related, near_prefix=near, limit=POOL)
    if employer:
        if not job_belongs_to(job, await organization_of(session, actor)):
            raise missing
        query = PoolQuery(exact=exact, related=related, near_prefix=near, consent_only=True)
    elif actor.role == Role.broker:
        if job.status != JobStatus.published:
            raise missing
        reach = await scope.reach(session, actor)
        query = PoolQuery(exact=exact, related=related, near_prefix=near, villages=reach.villages)
    elif not actor.is_system:
        query = PoolQuery(
            exact=exact, related=related, near_prefix=near, region_prefix=actor.region_code
        )
    profile = job_profile(job)
    ranked = sorted(
        (
            (pooled, score(pooled.profile, profile, now=now, today=today))
            for pooled in await _pool(session, query, job_id=job.id)
        ),
        key=lambda pair: (-pair[1].score, pair[0].id),
    )
    items = []
    for pooled, result in ranked[offset : offset + limit]:
        # Employers see a worker in full once a broker recommended them to this job.
        masked = employer and pooled.recommendation_id is None
        card = cards.worker_card(
            pooled,
            names=pooled.region_names,
            masked=masked,
            cipher=cipher if employer else None,
            today=today,
            occupation_names=_names(pooled.occupation_codes),
        )
        items.append(
            CandidateOut(
                score=result.score,
                components=_components(result),
                worker=card,
                recommendation_id=pooled.recommendation_id,
                recommendation_status=pooled.recommendation_status,
            )
        )
    return items, len(ranked)


@dataclass(frozen=True, slots=True)
class Pooled:
    """A live worker of a job's pool as one row gave it: what ranking reads (``profile``),
    what the card shows, the latest recommendation to the job (not lapsed) and the
    names of the worker's district, township and village."""

    id: int
    profile: WorkerProfile
    name: str | None
    phone_enc: str | None
    gender: str | None
    birth_date: date | None
    hukou_village_code: str
    skills: tuple[str, ...]
    occupation_codes: tuple[str, ...]
    certificates: tuple[dict[str, Any], ...]
    consent_to_recommend: bool
    recommendation_id: int | None
    recommendation_status: str | None
    region_names: dict[str, str]


_PROFILE_COLUMNS = (
    col(Worker.id),
    col(Worker.occupation_codes),
    col(Worker.skills),
    col(Worker.current_region_code),
    col(Worker.hukou_village_code),
    col(Worker.mobility),
    col(Worker.wage_min_fen),
    col(Worker.wage_max_fen),
    col(Worker.wage_unit),
    col(Worker.available_from),
    col(Worker.employment_status),
    col(Worker.certificates),
    col(Worker.last_verified_at),
)


def _pool_statement() -> Select[Any]:
    """The pooled workers' rows, built once (the job is a bound parameter); which
    workers is added by ``_rows_of`` and ``_ROWS_BY_ID``."""
    earlier = aliased(Recommendation, name="earlier")
    latest = (
        select(func.max(col(earlier.id)))
        .where(
            col(earlier.job_id) == bindparam("job_id"),
            col(earlier.worker_id) == col(Worker.id),
            col(earlier.status) != RecommendationStatus.lapsed,
        )
        .scalar_subquery()
    )
    stmt = (
        select(
            *_PROFILE_COLUMNS,
            col(Worker.name),
            col(Worker.phone_enc),
            col(Worker.gender),
            col(Worker.birth_date),
            col(Worker.consent_to_recommend),
            col(Recommendation.id).label("recommendation_id"),
            col(Recommendation.status).label("recommendation_status"),
            col(Worker.deleted_at),
        )
        .select_from(Worker)
        .outerjoin(Recommendation, col(Recommendation.id) == latest)
    )
    return cards.place_joins(stmt, col(Worker.hukou_village_code))


_POOL_ROWS = _pool_statement()
_ROWS_BY_ID = _POOL_ROWS.where(
    col(Worker.id).in_(bindparam("ids", expanding=True)), col(Worker.deleted_at).is_(None)
)


@lru_cache(maxsize=16)
def _rows_of(pick: Select[Any]) -> Select[Any]:
    """The rows of every worker ``pick`` finds, deleted ones too (so that the rows count
    what it found); one statement per pick's shape."""
    return _POOL_ROWS.where(col(Worker.id).in_(pick))


async def _pool(session: AsyncSession, query: PoolQuery, *, job_id: int) -> list[Pooled]:
    """The live workers of the pool, one row each as it is now, without ORM objects.
    A broker's villages in one read when they hold no more than the pool takes (the
    usual case); otherwise the prefilter's steps pick the ids and one read loads them."""
    everyone = whole(query)
    if everyone is not None:
        rows = (
            await session.execute(
                _rows_of(everyone.statement), {**everyone.params, "job_id": job_id}
            )
        ).all()
        if len(rows) <= query.limit:
            return [_pooled_row(r) for r in rows if r.deleted_at is None]
    ids = await picked(session, query)
    if not ids:
        return []
    rows = (await session.execute(_ROWS_BY_ID, {"ids": ids, "job_id": job_id})).all()
    return [_pooled_row(r) for r in rows]


def _pooled_row(row: Any) -> Pooled:
    # Unpacked by position (the order of _pool_statement's columns): reading a row's
    # fields by name costs more than ranking the worker.
    (
        worker_id,
        occupation_codes,
        skills,
        current_region_code,
        village,
        mobility,
        wage_min_fen,
        wage_max_fen,
        wage_unit,
        available_from,
        employment_status,
        certificates,
        last_verified_at,
        name,
        phone_enc,
        gender,
        birth_date,
        consent,
        recommendation_id,
        recommendation_status,
        _deleted_at,
        *places,
    ) = row
    occupation_codes = tuple(occupation_codes or ())
    skills = tuple(skills or ())
    certificates = tuple(certificates or ())
    return Pooled(
        id=worker_id,
        profile=WorkerProfile(
            occupation_codes=occupation_codes,
            skills=skills,
            region_code=current_region_code or village,
            mobility=mobility,
            wage_min_fen=wage_min_fen,
            wage_max_fen=wage_max_fen,
            wage_unit=wage_unit,
            available_from=available_from,
            employment_status=employment_status,
            certificates=tuple(_certificate(c) for c in certificates),
            last_verified_at=last_verified_at,
        ),
        name=name,
        phone_enc=phone_enc,
        gender=gender,
        birth_date=birth_date,
        hukou_village_code=village,
        skills=skills,
        occupation_codes=occupation_codes,
        certificates=certificates,
        consent_to_recommend=bool(consent),
        recommendation_id=recommendation_id,
        recommendation_status=recommendation_status,
        region_names=cards.place_names(village, places),
    )


async def matches(
    *,
    session: AsyncSession,
    actor: Actor,
    worker_id: int,
    limit: int = 20,
    offset: int = 0,
    now: datetime | None = None,
) -> tuple[list[MatchOut], int]:
    """The best published jobs for a worker the actor may see, best first."""
    now = now or utcnow()
    today = local(now).date()
    require(actor, "matching.matches")
    reach = await scope.reach(session, actor)
    worker = await scope.load(session, reach, worker_id)
    profile = worker_profile(worker)
    # Rank on the columns ranking reads; load whole jobs for the page only.
    ranked = sorted(
        (
            (job_id, score(profile, job, now=now, today=today))
            for job_id, job in await _job_pool(session, worker)
        ),
        key=lambda pair: (-pair[1].score, pair[0]),
    )
    chosen = ranked[offset : offset + limit]
    rows = await session.execute(select(Job).where(col(Job.id).in_([i for i, _ in chosen])))
    by_id = {j.id: j for j in rows.scalars()}
    page = [(by_id[i], result) for i, result in chosen if i in by_id]
    recs = await _recommendations(
        session, job_ids=[j.id for j, _ in page if j.id is not None], worker_ids=[worker_id]
    )
    names = await cards.region_names(session, [j.work_region_code for j, _ in page])
    orgs = await cards.organizations(session, [j.organization_id for j, _ in page])
    items = []
    for job, result in page:
        assert job.id is not None
        rec = recs.get((job.id, worker_id))
        items.append(
            MatchOut(
                score=result.score,
                components=_components(result),
                job=cards.job_card(job, names=names, organization=orgs.get(job.organization_id)),
                recommendation_id=rec.id if rec else None,
                recommendation_status=rec.status if rec else None,
            )
        )
    return items, len(ranked)


_JOB_COLUMNS = (
    col(Job.id),
    col(Job.occupation_code),
    col(Job.title),
    col(Job.work_region_code),
    col(Job.wage_min_fen),
    col(Job.wage_max_fen),
    col(Job.wage_unit),
    col(Job.starts_on),
    col(Job.certificates_required),
)


async def _job_pool(
    session: AsyncSession, worker: Worker, *, limit: int = POOL
) -> list[tuple[int, JobProfile]]:
    """Published jobs of the worker's occupations (then their families), nearest
    district first, bounded; a worker who stays local gets their district's only."""
    tax = load_taxonomy()
    own = [k for k in worker.occupation_codes if tax.get(k) is not None]
    if not own:  # codes not derived yet: what the typed skills name
        own = list(dict.fromkeys(key for skill in worker.skills for key, _ in skill_keys(skill)))
    family = {o.key for k in own for o in tax.family(tax.get(k).family)}  # type: ignore[union-attr]
    related = sorted(family - set(own))
    home = (worker.current_region_code or worker.hukou_village_code)[:6]
    found: dict[int, JobProfile] = {}
    steps: list[tuple[list[str], str | None]] = [(own, home), (own, None)]
    steps += [(related, home), (related, None)]
    for keys, prefix in steps:
        if not keys or len(found) >= limit:
            continue
        if worker.mobility == "local" and prefix is None:
            continue
        stmt = select(*_JOB_COLUMNS).where(
            # `status || ''` keeps the planner off the status index (most jobs are
            # published): the occupation index is the selective one.
            col(Job.status).concat("") == JobStatus.published,
            col(Job.occupation_code).in_(keys),
        )
        if prefix:
            stmt = stmt.where(*under(col(Job.work_region_code), prefix))
        if found:
            stmt = stmt.where(col(Job.id).not_in(list(found)))
        stmt = stmt.limit(limit - len(found))
        for row in (await session.execute(stmt)).all():
            found[int(row.id)] = JobProfile(
                occupation_code=row.occupation_code,
                title=row.title,
                region_code=row.work_region_code,
                wage_min_fen=row.wage_min_fen,
                wage_max_fen=row.wage_max_fen,
                wage_unit=row.wage_unit,
                starts_on=row.starts_on,
                certificates_required=tuple(row.certificates_required or ()),
            )
    return list(found.items())
