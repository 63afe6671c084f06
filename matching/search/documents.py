"""Database rows → search documents, for workers and jobs.

Rows are read with plain column selects (not ORM objects) so a full rebuild of a
million records streams quickly. A row that must not be searchable (a deleted
worker; a job that is not published) gives ``None``: the caller removes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace.jobs.models import Job, JobStatus
from marketplace.organizations.models import Organization
from marketplace.regions.models import Region
from marketplace.workers.models import Worker
from matching.search.base import SearchDoc
from matching.taxonomy import load_taxonomy

EPOCH = date(1970, 1, 1)
# Code prefixes that name a region: 重庆市 50, 万州区 500101, a township 500101001…
# (and for places outside Chongqing, GB/T 2260 province 44, city 4403, county 440305).
PREFIX_LENGTHS = (2, 4, 6, 9, 12)
DESCRIPTION_CHARS = 2000  # enough for every word a searcher types about a job

WORKER_COLUMNS = (
    col(Worker.id),
    col(Worker.name),
    col(Worker.skills),
    col(Worker.occupation_codes),
    col(Worker.current_location_text),
    col(Worker.current_region_code),
    col(Worker.hukou_village_code),
    col(Worker.employment_status),
    col(Worker.broker_id),
    col(Worker.consent_to_recommend),
    col(Worker.available_from),
    col(Worker.wage_min_fen),
    col(Worker.updated_at),
    col(Worker.deleted_at),
)
JOB_COLUMNS = (
    col(Job.id),
    col(Job.title),
    col(Job.description),
    col(Job.occupation_code),
    col(Job.work_region_code),
    col(Job.work_location_text),
    col(Job.address),
    col(Job.organization_id),
    col(Job.board),
    col(Job.lodging),
    col(Job.wage_unit),
    col(Job.wage_min_fen),
    col(Job.wage_max_fen),
    col(Job.starts_on),
    col(Job.status),
    col(Job.updated_at),
)


def day_number(value: date | None) -> int:
    return (value - EPOCH).days if value is not None else 0


def region_prefixes(code: str | None) -> list[str]:
    return list(_prefixes(code)) if code else []


@lru_cache(maxsize=65536)
def _prefixes(code: str) -> tuple[str, ...]:
    return tuple(code[:n] for n in PREFIX_LENGTHS if n <= len(code))


def _stamp(value: datetime | None) -> int:
    return int(value.timestamp()) if value is not None else 0


def occupation_names(keys: Iterable[str | None]) -> list[str]:
    return list(_occupation_names(tuple(keys)))


@lru_cache(maxsize=65536)
def _occupation_names(keys: tuple[str | None, ...]) -> tuple[str, ...]:
    taxonomy = load_taxonomy()
    out: list[str] = []
    for key in keys:
        occ = taxonomy.lookup(key) if key else None
        if occ is not None:
            out.append(occ.name)
    return tuple(out)


class Names:
    """Region and organisation names, loaded on demand and kept for the run."""

    def __init__(self) -> None:
        self.regions: dict[str, str] = {}
        self.organizations: dict[int, str] = {}
        self._paths: dict[str, list[str]] = {}

    async def load_all_regions(self, session: AsyncSession) -> None:
        rows = await session.execute(select(col(Region.code), col(Region.name)))
        self.regions.update({code: name for code, name in rows.all()})

    async def load_regions(self, session: AsyncSession, codes: Iterable[str | None]) -> None:
        wanted = {p for c in codes for p in region_prefixes(c)} - self.regions.keys()
        if wanted:
            rows = await session.execute(
                select(col(Region.code), col(Region.name)).where(col(Region.code).in_(wanted))
            )
            self.regions.update({code: name for code, name in rows.all()})

    async def load_organizations(self, session: AsyncSession, ids: Iterable[int]) -> None:
        wanted = set(ids) - self.organizations.keys()
        if wanted:
            rows = await session.execute(
                select(col(Organization.id), col(Organization.name)).where(
                    col(Organization.id).in_(wanted)
                )
            )
            self.organizations.update({i: name for i, name in rows.all() if i is not None})

    def path(self, code: str | None) -> list[str]:
        if not code:
            return []
        found = self._paths.get(code)
        if found is None:
            found = self._paths[code] = [
                self.regions[p] for p in _prefixes(code) if p in self.regions
            ]
        return found


def worker_document(row: Any, names: Names) -> SearchDoc | None:
    if row["deleted_at"] is not None:
        return None
    text = [
        row["name"] or "",
        *(row["skills"] or []),
        *occupation_names(row["occupation_codes"] or []),
        row["current_location_text"] or "",
        *names.path(row["hukou_village_code"]),
        *names.path(row["current_region_code"]),
    ]
    return SearchDoc(
        id=int(row["id"]),
        text=" ".join(t for t in text if t),
        keywords={
            "occupation": list(row["occupation_codes"] or []),
            "region": region_prefixes(row["hukou_village_code"]),
            "status": [row["employment_status"]],
            "broker": [str(row["broker_id"])],
            "consent": ["1" if row["consent_to_recommend"] else "0"],
        },
        numbers={
            # No date on record: available now (docs/search.md).
            "available": day_number(row["available_from"]),
            "updated": _stamp(row["updated_at"]),
            "wage_min": int(row["wage_min_fen"] or 0),
        },
    )


def job_document(row: Any, names: Names) -> SearchDoc | None:
    if row["status"] != JobStatus.published:
        return None
    text = [
        row["title"],
        *occupation_names([row["occupation_code"]]),
        (row["description"] or "")[:DESCRIPTION_CHARS],
        row["work_location_text"] or "",
        row["address"] or "",
        *names.path(row["work_region_code"]),
        names.organizations.get(int(row["organization_id"]), ""),
    ]
    return SearchDoc(
        id=int(row["id"]),
        text=" ".join(t for t in text if t),
        keywords={
            "occupation": [row["occupation_code"]] if row["occupation_code"] else [],
            "region": region_prefixes(row["work_region_code"]),
            "board": ["1" if row["board"] else "0"],
            "lodging": ["1" if row["lodging"] else "0"],
            "wage_unit": [row["wage_unit"]],
            "organization": [str(row["organization_id"])],
        },
        numbers={
            "wage_min": int(row["wage_min_fen"]),
            "wage_max": int(row["wage_max_fen"]),
            "starts": day_number(row["starts_on"]),
            "updated": _stamp(row["updated_at"]),
        },
    )
