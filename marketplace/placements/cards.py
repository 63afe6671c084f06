"""What a reader sees of a worker or a job in matching lists.

Employers see consenting workers only, masked (surname, age, township, skills and
certificate types; no phone, no village, never the ID number) until a broker recommends
the worker to one of their jobs; from then on the employer sees the full name and the
phone, which they need to arrange an interview. Brokers and officers see names; the
phone stays behind the register's audited reveal. See docs/matching.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any, Protocol

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from marketplace.crypto import DataCipher
from marketplace.jobs.models import STATUS_LABELS, Job
from marketplace.organizations.models import Organization
from marketplace.placements.models import JobCard, WorkerCard
from marketplace.regions.models import Region
from marketplace.workers.identity import age_on
from marketplace.workers.records import CTX_PHONE
from marketplace.workers.rules import UNIT_LABELS, mask_name

GENDER_LABELS = {"M": "男", "F": "女", "male": "男", "female": "女", "男": "男", "女": "女"}


async def region_names(session: AsyncSession, codes: Iterable[str | None]) -> dict[str, str]:
    """Names of the given codes and of their townships and districts."""
    wanted: set[str] = set()
    for code in codes:
        if code:
            wanted.update(code[:n] for n in (6, 9, 12) if len(code) >= n)
    if not wanted:
        return {}
    rows = await session.execute(
        select(col(Region.code), col(Region.name)).where(col(Region.code).in_(sorted(wanted)))
    )
    return {str(code): str(name) for code, name in rows.all()}


def place(code: str | None, names: dict[str, str], *, depth: int = 12) -> str:
    """区县 + 乡镇 (+ 村) name of a code, down to ``depth`` characters of it."""
    if not code:
        return "重庆市外"
    parts = [
        names[code[:n]] for n in (6, 9, 12) if n <= min(depth, len(code)) and code[:n] in names
    ]
    return "".join(parts) or code


class CardSource(Protocol):
    """What a card reads of a worker: a ``Worker`` or a plain row of these columns."""

    @property
    def id(self) -> int | None: ...
    @property
    def name(self) -> str | None: ...
    @property
    def phone_enc(self) -> str | None: ...
    @property
    def gender(self) -> str | None: ...
    @property
    def birth_date(self) -> date | None: ...
    @property
    def hukou_village_code(self) -> str: ...
    @property
    def skills(self) -> Sequence[str]: ...
    @property
    def certificates(self) -> Sequence[Mapping[str, Any]]: ...
    @property
    def consent_to_recommend(self) -> bool: ...


def worker_card(
    worker: CardSource,
    *,
    names: dict[str, str],
    masked: bool,
    cipher: DataCipher | None = None,
    today: date,
    occupation_names: list[str],
) -> WorkerCard:
    """``cipher`` given (and not masked): the phone in clear, for an employer after a
    recommendation."""
    assert worker.id is not None
    phone = None
    if not masked and cipher is not None and worker.phone_enc:
        phone = cipher.decrypt(worker.phone_enc, context=CTX_PHONE)
    return WorkerCard(
        id=worker.id,
        name=mask_name(worker.name) if masked else (worker.name or ""),
        phone=phone,
        gender=GENDER_LABELS.get(worker.gender or "", worker.gender),
        age=age_on(worker.birth_date, today) if worker.birth_date else None,
        village=place(worker.hukou_village_code, names, depth=9 if masked else 12),
        skills=list(worker.skills),
        occupation_names=occupation_names,
        certificates=[str(c.get("type", "")) for c in worker.certificates],
        masked=masked,
        consent=worker.consent_to_recommend,
    )


def wage_text(job: Job) -> str:
    unit = UNIT_LABELS.get(job.wage_unit, job.wage_unit)  # type: ignore[call-overload]
    low, high = job.wage_min_fen / 100, job.wage_max_fen / 100
    amount = f"{low:g}" if low == high else f"{low:g}～{high:g}"
    return f"{amount} 元/{unit}"


def job_card(job: Job, *, names: dict[str, str], organization: Organization | None) -> JobCard:
    return _job_card(job, names=names, organization_name=organization.name if organization else "")


def _job_card(job: Job, *, names: dict[str, str], organization_name: str) -> JobCard:
    assert job.id is not None
    in_chongqing = job.work_region_code.startswith("50")
    where = place(job.work_region_code, names) if in_chongqing else (job.work_location_text or "")
    return JobCard(
        id=job.id,
        title=job.title,
        organization_name=organization_name,
        work_place=where,
        wage=wage_text(job),
        starts_on=job.starts_on,
        status=STATUS_LABELS.get(job.status, job.status),  # type: ignore[call-overload]
    )


PLACE_LENGTHS = (6, 9, 12)  # district, township, village


def place_joins(stmt: Select[Any], code: Any) -> Select[Any]:
    """``stmt`` with the names of ``code``'s district, township and village (columns
    place6, place9, place12; None where the code is shorter or unknown)."""
    places = [aliased(Region, name=f"place{n}") for n in PLACE_LENGTHS]
    for region, n in zip(places, PLACE_LENGTHS, strict=True):
        stmt = stmt.add_columns(col(region.name).label(f"place{n}")).outerjoin(
            region, col(region.code) == func.substr(code, 1, n)
        )
    return stmt


def place_names(code: str | None, found: Iterable[str | None]) -> dict[str, str]:
    """What ``region_names`` answers for ``code``, from place_joins' three columns."""
    if not code:
        return {}
    return {
        code[:n]: name
        for n, name in zip(PLACE_LENGTHS, found, strict=True)
        if name is not None and len(code) >= n
    }


def _job_card_statement() -> Select[Any]:
    stmt = (
        select(col(Organization.name))
        .select_from(Job)
        .outerjoin(Organization, col(Organization.id) == col(Job.organization_id))
        .where(col(Job.id) == bindparam("job_id"))
    )
    return place_joins(stmt, col(Job.work_region_code))


_JOB_CARD = _job_card_statement()


async def job_card_of(session: AsyncSession, job: Job) -> JobCard:
    """One job's card: its organisation's name and its place names in one read."""
    organization_name, *found = (await session.execute(_JOB_CARD, {"job_id": job.id})).one()
    return _job_card(
        job,
        names=place_names(job.work_region_code, found),
        organization_name=organization_name or "",
    )


async def organizations(session: AsyncSession, ids: Iterable[int]) -> dict[int, Organization]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = await session.execute(select(Organization).where(col(Organization.id).in_(wanted)))
    return {o.id: o for o in rows.scalars() if o.id is not None}
